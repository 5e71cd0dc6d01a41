/* SPDX-License-Identifier: BSD-3-Clause */
/* Stopping a worker thread (internal). */
#ifndef TSR_COMMON_THREAD_H
#define TSR_COMMON_THREAD_H
#include <pthread.h>

/* For a thread that waits on cv under mu until *flag is set: sets *flag
 * under mu, wakes every waiter on cv and joins the thread. */
void tsr_thread_stop(pthread_t thread, pthread_mutex_t *mu, pthread_cond_t *cv, int *flag);

#endif
