/* SPDX-License-Identifier: BSD-3-Clause */
/* `tessera apply normalize`: a standardised copy of the dataset. Two
 * passes: the column means and variances (the stats pass, merged in
 * partition order and shared with every rank), then each row as
 * (x - mean) / std, with std = 1 for a constant column. The output holds
 * the dataset under its own name (float32), /mean and /std [columns], and,
 * when the input is /X beside a /y of as many rows, /y copied unchanged,
 * so the copy trains like the original. */
#include "apply/internal.h"

#include "tessera/error.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct norm_ctx {
    size_t d;
    float *mean, *inv, *std;
    apply_input_t y; /* /y, when copied */
    int with_y, y_int;
} norm_ctx_t;

static int norm_map(void *ctx, const float *x, size_t rows, size_t first_row, void *const *out)
{
    norm_ctx_t *c = ctx;
    float *o = out[0];
    for (size_t r = 0; r < rows; r++)
        for (size_t j = 0; j < c->d; j++)
            o[r * c->d + j] = (x[r * c->d + j] - c->mean[j]) * c->inv[j];
    if (!c->with_y)
        return TSR_OK;
    return apply_input_read_as(&c->y, first_row, rows, c->y_int ? H5T_NATIVE_INT32 : H5T_NATIVE_FLOAT, out[1]);
}

static int norm_setup(void *ctx, apply_out_t *o)
{
    norm_ctx_t *c = ctx;
    int rc = apply_out_small(o, "/mean", c->mean, c->d);
    return rc ? rc : apply_out_small(o, "/std", c->std, c->d);
}

int apply_normalize(MPI_Comm comm, const tsr_apply_opts_t *o, apply_input_t *in, uint32_t fingerprint)
{
    apply_stats_t st;
    norm_ctx_t c = {.d = in->ncols};
    int rc = apply_stats_pass(comm, in, o->partition_rows, 0, 1, &st, NULL);
    if (rc)
        return rc;
    c.mean = malloc(c.d * sizeof *c.mean);
    c.inv = malloc(c.d * sizeof *c.inv);
    c.std = malloc(c.d * sizeof *c.std);
    if (!c.mean || !c.inv || !c.std)
        rc = tsr_error_set(TSR_ENOMEM, "normalize: out of memory");
    for (size_t j = 0; rc == TSR_OK && j < c.d; j++) {
        double sd = st.total[j].n > 0 ? sqrt(st.total[j].m2 / st.total[j].n) : 0;
        c.mean[j] = (float)st.total[j].mean;
        c.std[j] = sd > 0 && isfinite(sd) ? (float)sd : 1.0f;
        c.inv[j] = 1.0f / c.std[j];
    }
    apply_stats_destroy(&st);
    rc = apply_agree(comm, rc);
    int y_rc = TSR_OK;
    if (rc == TSR_OK && strcmp(in->dset, "/X") == 0 && apply_input_has_rows(in, "/y", in->n)) {
        y_rc = apply_input_open(&c.y, in->path, "/y", NULL, 0);
        c.with_y = y_rc == TSR_OK;
        c.y_int = c.with_y && apply_input_is_integer(&c.y);
    }
    (void)y_rc; /* no usable /y: the copy has none */
    if (rc == TSR_OK) {
        const char *inputs[] = {in->path};
        apply_rows_fn_t fn = {.nout = c.with_y ? 2 : 1,
                              .out = {{in->dset, H5T_NATIVE_FLOAT, c.d},
                                      {"/y", c.y_int ? H5T_NATIVE_INT32 : H5T_NATIVE_FLOAT, c.y.d > 1 ? c.y.d : 0}},
                              .map = norm_map,
                              .ctx = &c,
                              .setup = norm_setup,
                              .inputs = inputs,
                              .ninputs = 1};
        rc = apply_rows_run(comm, in, o->partition_rows, o->output, fingerprint, &fn);
    }
    if (c.with_y)
        apply_input_close(&c.y);
    free(c.mean);
    free(c.inv);
    free(c.std);
    return rc;
}
