/* SPDX-License-Identifier: BSD-3-Clause */
/* A row function for `tessera apply` (tessera/apply.h): each row's sum and
 * Euclidean norm, written as /out [rows, 2]:
 *     mpirun -n 4 tessera apply ./libtessera_apply_norms.so --input data.h5 --output norms.h5
 * Built in tessera's tree (examples/CMakeLists.txt) and by an outside
 * project with find_package(tessera) (CMakeLists.txt beside this file). */
#include <math.h>
#include <tessera/apply.h>

static int norms_setup(size_t cols, size_t *out_cols, size_t *partial_len)
{
    (void)cols;
    *out_cols = 2;
    *partial_len = 0;
    return 0;
}

static int norms_map(const float *x, size_t rows, size_t cols, float *out)
{
    for (size_t r = 0; r < rows; r++) {
        double sum = 0, sq = 0;
        for (size_t c = 0; c < cols; c++) {
            sum += x[r * cols + c];
            sq += (double)x[r * cols + c] * x[r * cols + c];
        }
        out[2 * r] = (float)sum;
        out[2 * r + 1] = (float)sqrt(sq);
    }
    return 0;
}

static const tsr_apply_plugin_t norms = {
    .abi = TSR_APPLY_ABI,
    .name = "norms",
    .setup = norms_setup,
    .map = norms_map,
};

const int tessera_apply_abi = TSR_APPLY_ABI;
const tsr_apply_plugin_t *tessera_apply_plugin(void) { return &norms; }
