/* SPDX-License-Identifier: BSD-3-Clause */
/* A reduction for `tessera apply` (tessera/apply.h): the number of rows and
 * each column's sum, as {"result": [rows, sum_0, sum_1, ...]}:
 *     mpirun -n 4 tessera apply ./libtessera_apply_colsum.so --input data.h5 -o sums.json
 * Each partition gives a partial; tessera merges them in partition order on
 * rank 0, so the sums are the same bytes on any number of ranks. */
#include <tessera/apply.h>

static int colsum_setup(size_t cols, size_t *out_cols, size_t *partial_len)
{
    *out_cols = 0;
    *partial_len = cols + 1;
    return 0;
}

static int colsum_partial(const float *x, size_t rows, size_t cols, size_t first_row, double *partial)
{
    (void)first_row;
    partial[0] = (double)rows;
    for (size_t r = 0; r < rows; r++)
        for (size_t c = 0; c < cols; c++)
            partial[1 + c] += x[r * cols + c];
    return 0;
}

static void colsum_merge(double *a, const double *b, size_t len)
{
    for (size_t i = 0; i < len; i++)
        a[i] += b[i];
}

static const tsr_apply_plugin_t colsum = {
    .abi = TSR_APPLY_ABI,
    .name = "colsum",
    .setup = colsum_setup,
    .partial = colsum_partial,
    .merge = colsum_merge,
};

const int tessera_apply_abi = TSR_APPLY_ABI;
const tsr_apply_plugin_t *tessera_apply_plugin(void) { return &colsum; }
