#include "common/h5lock.h"

#include <hdf5.h>
#include <pthread.h>

static pthread_mutex_t h5_mutex = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t h5_once = PTHREAD_ONCE_INIT;

static void h5_quiet(void)
{
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
}

void tsr_h5_lock(void)
{
    pthread_mutex_lock(&h5_mutex);
    pthread_once(&h5_once, h5_quiet);
}

void tsr_h5_unlock(void)
{
    pthread_mutex_unlock(&h5_mutex);
}
