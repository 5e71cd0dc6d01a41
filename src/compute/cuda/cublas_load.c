/* SPDX-License-Identifier: BSD-3-Clause */
/* cuBLAS, loaded on first use. Linking libcublas costs every process that
 * loads libtessera about 0.35 s and 210 MB of memory at start-up (the
 * dynamic loader maps and relocates libcublasLt), GPU or not: `tessera
 * version` would pay it. So tessera links only the CUDA runtime and opens
 * libcublas.so.<major> here, from the loader's search path or else from
 * the directory the CUDA runtime itself was loaded from. */
#include "compute/cuda/gpu_internal.h"
#include "tessera/error.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

tsr_cublas_t tsr_cublas;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static int load_rc;
static char load_msg[768];

static void *open_cublas(char *tried, size_t len)
{
    char name[64], path[4096];
    snprintf(name, sizeof name, "libcublas.so.%d", CUBLAS_VER_MAJOR);
    void *h = dlopen(name, RTLD_NOW | RTLD_LOCAL);
    snprintf(tried, len, "%s: %s", name, dlerror());
    Dl_info info;
    if (!h && dladdr((void *)cudaGetDeviceCount, &info) && info.dli_fname) {
        const char *slash = strrchr(info.dli_fname, '/');
        if (slash && (size_t)(slash - info.dli_fname) < sizeof path - sizeof name - 1) {
            snprintf(path, sizeof path, "%.*s/%s", (int)(slash - info.dli_fname), info.dli_fname, name);
            h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
            if (!h) {
                /* dlerror() names the path it tried. */
                size_t used = strlen(tried);
                snprintf(tried + used, len - used, "; %.300s", dlerror());
            }
        }
    }
    return h;
}

static void load(void)
{
    char tried[600];
    void *h = open_cublas(tried, sizeof tried);
    if (!h) {
        load_rc = TSR_ENOTSUP;
        snprintf(load_msg, sizeof load_msg, "cannot load cuBLAS: %s", tried);
        return;
    }
#define SYM(field, sym)                                                                                                \
    if (!(tsr_cublas.field = (__typeof__(tsr_cublas.field))dlsym(h, sym))) {                                           \
        load_rc = TSR_ENOTSUP;                                                                                         \
        snprintf(load_msg, sizeof load_msg, "cuBLAS lacks %s", sym);                                                   \
        return;                                                                                                        \
    }
    SYM(create, "cublasCreate_v2")
    SYM(destroy, "cublasDestroy_v2")
    SYM(set_stream, "cublasSetStream_v2")
    SYM(set_math_mode, "cublasSetMathMode")
    SYM(sgemm, "cublasSgemm_v2")
    SYM(gemm_ex, "cublasGemmEx")
    SYM(status_string, "cublasGetStatusString")
#undef SYM
}

int tsr_cublas_load(void)
{
    pthread_once(&once, load);
    return load_rc ? tsr_error_set(load_rc, "%s", load_msg) : TSR_OK;
}
