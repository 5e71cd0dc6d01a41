/* SPDX-License-Identifier: BSD-3-Clause */
/* The walltime under SLURM (rank 0): a checkpoint and exit 75 a margin
 * before the job's end, asked through the stop flag every step carries. */
#include "train/setup.h"

#include <signal.h>
#include <stdio.h>

double tsr_train_walltime_margin(tsr_train_ctx_t *ctx)
{
    if (ctx->rank != 0)
        return -1;
    const tsr_slurm_facts_t *f = tsr_runtime_slurm(ctx->rt);
    if (!f->in_slurm)
        return -1; /* the CLI says which SLURM settings it ignores */
    double margin = ctx->opt->runtime.walltime_margin_seconds;
    double left = tsr_runtime_walltime_left(ctx->rt);
    char lefts[64] = "unknown";
    if (left >= 0)
        snprintf(lefts, sizeof lefts, "%.0f s", left);
    tsr_log(TSR_LOG_INFO,
            "SLURM job %ld step %ld (run %d) on %s, %d task%s on this node; walltime left %s, "
            "margin %.0f s",
            f->job_id, f->step_id, f->restart_count + 1, f->nodelist, f->tasks_per_node,
            f->tasks_per_node == 1 ? "" : "s", lefts, margin);
    double limit = tsr_runtime_walltime_limit(ctx->rt);
    if (limit > 0 && margin >= limit) {
        /* Every run would stop at its first step and requeue, forever. */
        tsr_log(TSR_LOG_WARN,
                "walltime: the margin of %.0f s is not less than the job's time limit of %.0f s: "
                "the margin is off (lower runtime.walltime_margin_seconds or ask for more time)",
                margin, limit);
        return -1;
    }
    if (limit > 0 && margin > limit / 2)
        tsr_log(TSR_LOG_WARN,
                "walltime: the margin of %.0f s is more than half the job's time limit of %.0f s; "
                "each run trains for less than the margin",
                margin, limit);
    return margin;
}

void tsr_train_walltime_check(tsr_train_ctx_t *ctx, double margin)
{
    if (margin < 0 || tsr_runtime_stop_signal())
        return;
    double left = tsr_runtime_walltime_left(ctx->rt);
    if (left < 0 || left >= margin)
        return;
    tsr_log(TSR_LOG_INFO, "walltime: %.0f s left, under the margin of %.0f s: checkpointing and stopping", left,
            margin);
    tsr_runtime_request_stop(SIGUSR1);
}
