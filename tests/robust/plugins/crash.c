/* SPDX-License-Identifier: BSD-3-Clause */
/* Hostile plugins for tests/robust/test_model.sh, built from this one file:
 * -DCRASH: a kind "crashy" whose forward dereferences NULL at its 3rd call
 * (TSR_PLUGIN_CRASH_RANK, when set, names the only rank that crashes);
 * -DWRONG_ABI: tessera_plugin_abi is not TSR_LAYER_ABI;
 * -DNO_KINDS: tessera_plugin_kinds is missing. */
#include <stdlib.h>
#include <tessera/layer.h>

static int calls;

static int crashy_shape(tsr_layer_t *l)
{
    l->out = l->in;
    return 0;
}

static int crashy_forward(tsr_layer_t *l, const tsr_layer_run_t *run, const float *x, float *y, size_t n)
{
    const char *only = getenv("TSR_PLUGIN_CRASH_RANK");
    if (++calls == 3 && (!only || atoi(only) == run->rank)) {
        volatile float *p = NULL;
        *p = 1.0f;
    }
    for (size_t i = 0; i < n * (size_t)l->in.c * (size_t)l->in.h * (size_t)l->in.w; i++)
        y[i] = x[i];
    return 0;
}

static int crashy_backward(tsr_layer_t *l, const tsr_layer_run_t *run, const float *x, const float *y, float *dy,
                           float *dx, size_t n)
{
    (void)run, (void)x, (void)y;
    for (size_t i = 0; dx && i < n * (size_t)l->in.c * (size_t)l->in.h * (size_t)l->in.w; i++)
        dx[i] = dy[i];
    return 0;
}

static const tsr_layer_kind_t crashy = {
    .abi = TSR_LAYER_ABI,
    .name = "crashy",
    .shape = crashy_shape,
    .forward = crashy_forward,
    .backward = crashy_backward,
};

#ifdef WRONG_ABI
const int tessera_plugin_abi = TSR_LAYER_ABI + 41;
#else
const int tessera_plugin_abi = TSR_LAYER_ABI;
#endif

#ifndef NO_KINDS
const tsr_layer_kind_t *const *tessera_plugin_kinds(int *count)
{
    static const tsr_layer_kind_t *const kinds[] = {&crashy};
    *count = 1;
    return kinds;
}
#endif
