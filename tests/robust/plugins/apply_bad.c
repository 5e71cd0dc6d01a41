/* SPDX-License-Identifier: BSD-3-Clause */
/* Hostile apply plugins for tests/robust/test_apply.sh, built there from
 * this one file: -DCRASH: map dereferences NULL on its second call in a
 * process (a run of more partitions than ranks gets there on some rank); -DWRONG_ABI: tessera_apply_abi is not TSR_APPLY_ABI; -DNO_ENTRY:
 * tessera_apply_plugin is missing; -DREFUSE: setup refuses every input;
 * -DSLOW: map copies its rows after 50 ms (time to kill the run). */
#include <tessera/apply.h>
#include <unistd.h>
#include <tessera/error.h>

static size_t seen;

static int bad_setup(size_t cols, size_t *out_cols, size_t *partial_len)
{
    *out_cols = cols;
    *partial_len = 0;
#ifdef REFUSE
    tsr_error_set(TSR_EDATA, "this plugin wants no input at all");
    return 1;
#else
    return 0;
#endif
}

static int bad_map(const float *x, size_t rows, size_t cols, float *out)
{
    size_t first = seen;
    seen += rows;
    for (size_t i = 0; i < rows * cols; i++)
        out[i] = x[i];
#ifdef CRASH
    if (first > 0) {
        volatile float *p = 0;
        *p = 1.0f;
    }
#endif
#ifdef SLOW
    usleep(50000);
#endif
    (void)first;
    return 0;
}

static const tsr_apply_plugin_t bad = {.abi = TSR_APPLY_ABI, .name = "bad", .setup = bad_setup, .map = bad_map};

#ifdef WRONG_ABI
const int tessera_apply_abi = TSR_APPLY_ABI + 41;
#else
const int tessera_apply_abi = TSR_APPLY_ABI;
#endif
#ifndef NO_ENTRY
const tsr_apply_plugin_t *tessera_apply_plugin(void) { return &bad; }
#endif
