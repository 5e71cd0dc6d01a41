/* SPDX-License-Identifier: BSD-3-Clause */
/* The HDF5 lock (h5lock.h): recursive, so h5io's functions take it
 * themselves and may also be called by code that holds it. */
#include "common/h5lock.h"

#include <hdf5.h>
#include <pthread.h>

static pthread_mutex_t h5_mutex;
static pthread_once_t h5_once = PTHREAD_ONCE_INIT;

static void h5_init(void)
{
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutex_init(&h5_mutex, &a);
    pthread_mutexattr_destroy(&a);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL); /* tessera reports errors itself */
}

void tsr_h5_lock(void)
{
    pthread_once(&h5_once, h5_init);
    pthread_mutex_lock(&h5_mutex);
}

void tsr_h5_unlock(void) { pthread_mutex_unlock(&h5_mutex); }
