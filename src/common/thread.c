/* SPDX-License-Identifier: BSD-3-Clause */
/* The stop-and-join every module with a worker thread ends with. */
#include "common/thread.h"

void tsr_thread_stop(pthread_t thread, pthread_mutex_t *mu, pthread_cond_t *cv, int *flag)
{
    pthread_mutex_lock(mu);
    *flag = 1;
    pthread_cond_broadcast(cv);
    pthread_mutex_unlock(mu);
    pthread_join(thread, NULL);
}
