/* SPDX-License-Identifier: BSD-3-Clause */
/* The final report's classification metrics: top-1 and top-5 accuracy,
 * per-class accuracy and the confusion matrix over every rank's test
 * slice (summed in rank order), logged by rank 0. */
#include "train/setup.h"
#include "tessera/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_MATRIX 32 /* classes up to which the matrix is printed */

int tsr_train_report_metrics(tsr_train_ctx_t *ctx)
{
    const tsr_train_data_t *d = &ctx->data;
    tsr_model_t *m = ctx->net.model;
    if (!d->test || !d->test_y || !ctx->opt->train.eval || tsr_model_spec(m)->loss != TSR_LOSS_XENT || tsr_model_gpu(m))
        return TSR_OK;
    size_t k = tsr_model_output_size(m), n = k * k + 3;
    double *part = calloc(n, sizeof *part), *sum = calloc(n, sizeof *sum);
    uint64_t *conf = calloc(k * k, sizeof *conf);
    int rc = part && sum && conf ? TSR_OK : tsr_error_set(TSR_ENOMEM, "out of memory for the confusion matrix");
    int brc = tsr_train_sync_buffers(ctx);
    rc = rc ? rc : brc;
    tsr_eval_t e = {.classes = k, .confusion = conf};
    if (!rc && d->test_rows)
        rc = tsr_model_evaluate_full(m, d->test_x, d->test_y, NULL, d->test_rows, &e);
    if (part) {
        for (size_t i = 0; conf && i < k * k; i++)
            part[i] = (double)conf[i];
        part[k * k] = (double)e.top1;
        part[k * k + 1] = (double)e.top5;
        part[k * k + 2] = rc != TSR_OK;
    }
    int arc = part && sum
                  ? tsr_runtime_allreduce(ctx->rt, part, sum, (int)n, MPI_DOUBLE, MPI_SUM, "the test metrics", -1)
                  : TSR_ENOMEM;
    if (!rc && !arc && sum[k * k + 2] == 0 && ctx->rank == 0) {
        double total = (double)d->test_total;
        char *line = malloc(64 + k * 24);
        size_t at = 0;
        tsr_log(TSR_LOG_INFO, "test metrics: top-1 accuracy %.2f%%, top-5 accuracy %.2f%% (%zu classes, %.0f samples)",
                100 * sum[k * k] / total, 100 * sum[k * k + 1] / total, k, total);
        if (line) {
            at = (size_t)sprintf(line, "per-class accuracy:");
            for (size_t c = 0; c < k && c < 256; c++) {
                double row = 0;
                for (size_t j = 0; j < k; j++)
                    row += sum[c * k + j];
                at += (size_t)sprintf(line + at, " %zu %.1f%%", c, row > 0 ? 100 * sum[c * k + c] / row : 0.0);
            }
            tsr_log(TSR_LOG_INFO, "%s", line);
            if (k <= MAX_MATRIX) {
                tsr_log(TSR_LOG_INFO, "confusion matrix (rows: true class, columns: predicted):");
                for (size_t c = 0; c < k; c++) {
                    at = (size_t)sprintf(line, "%4zu |", c);
                    for (size_t j = 0; j < k; j++)
                        at += (size_t)sprintf(line + at, " %6.0f", sum[c * k + j]);
                    tsr_log(TSR_LOG_INFO, "%s", line);
                }
            }
            free(line);
        }
    }
    free(part);
    free(sum);
    free(conf);
    return rc ? rc : arc;
}
