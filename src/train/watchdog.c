/* The stall watchdog. Every step ends with a one-int agreement among all
 * ranks; waiting for it is where a rank that hangs (a dead node, a stuck
 * file system, a deadlock) shows up. Past the limit, the ranks that did
 * arrive tell rank 0 so on a communicator of their own, rank 0 names the
 * ones that did not, and the job is aborted rather than hanging until the
 * walltime. */
#include "train/setup.h"
#include "tessera/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { TAG_ARRIVED = 7001 };

static void nap(double seconds)
{
    struct timespec ts = {(time_t)seconds, (long)((seconds - (double)(time_t)seconds) * 1e9)};
    nanosleep(&ts, NULL);
}

/* Rank 0: collect arrival notes for up to grace seconds; report. */
static void report_rank0(tsr_train_ctx_t *ctx, long step, double waited, double grace)
{
    char *arrived = calloc((size_t)ctx->world, 1);
    char list[1024];
    size_t n = 0;
    int count = 1;
    double t0 = tsr_time_now();
    if (!arrived)
        return;
    arrived[0] = 1;
    while (count < ctx->world && tsr_time_now() - t0 < grace) {
        int flag = 0;
        MPI_Status st;
        MPI_Iprobe(MPI_ANY_SOURCE, TAG_ARRIVED, ctx->wd_comm, &flag, &st);
        if (!flag) {
            nap(0.01);
            continue;
        }
        long s;
        MPI_Recv(&s, 1, MPI_LONG, st.MPI_SOURCE, TAG_ARRIVED, ctx->wd_comm, MPI_STATUS_IGNORE);
        if (!arrived[st.MPI_SOURCE])
            count++;
        arrived[st.MPI_SOURCE] = 1;
    }
    list[0] = '\0';
    for (int r = 0; r < ctx->world && n < sizeof list - 16; r++)
        if (!arrived[r])
            n += (size_t)snprintf(list + n, sizeof list - n, "%s%d", n ? ", " : "", r);
    tsr_log(TSR_LOG_ERROR, "watchdog: step %ld has waited %.0f s for every rank (runtime.watchdog_seconds = %g); "
            "rank%s %s did not arrive (hung, stopped or on a stalled node); aborting the job with exit code 76",
            step, waited, ctx->watchdog, strchr(list, ',') ? "s" : "", list);
    free(arrived);
}

int tsr_train_wait_arrival(tsr_train_ctx_t *ctx, MPI_Request *req, long step)
{
    if (ctx->watchdog <= 0) {
        MPI_Wait(req, MPI_STATUS_IGNORE);
        return TSR_OK;
    }
    double t0 = tsr_time_now(), waited = 0;
    int done = 0;
    /* Poll hard for a moment (ranks normally arrive together), then gently. */
    for (long polls = 0;; polls++) {
        MPI_Test(req, &done, MPI_STATUS_IGNORE);
        if (done)
            return TSR_OK;
        waited = tsr_time_now() - t0;
        if (waited > ctx->watchdog)
            break;
        if (polls > 2000)
            nap(waited < 1 ? 50e-6 : 1e-3);
    }
    double grace = ctx->watchdog / 4 < 1 ? 1 : ctx->watchdog / 4 > 10 ? 10 : ctx->watchdog / 4;
    if (ctx->rank == 0) {
        report_rank0(ctx, step, waited, grace);
    } else {
        MPI_Request note;
        long s = step;
        MPI_Isend(&s, 1, MPI_LONG, 0, TAG_ARRIVED, ctx->wd_comm, &note);
        double t1 = tsr_time_now();
        int sent = 0;
        while (!sent && tsr_time_now() - t1 < 2 * grace) {
            MPI_Test(&note, &sent, MPI_STATUS_IGNORE);
            if (!sent)
                nap(0.01);
        }
        /* Give rank 0 its grace period to name the missing ranks first. */
        nap(grace + 1);
        tsr_log(TSR_LOG_ERROR, "watchdog: rank %d waited %.0f s at step %ld for other ranks%s; aborting", ctx->rank,
                waited, step, sent ? "" : " and rank 0 does not answer (it may be the one stalled)");
    }
    MPI_Abort(tsr_runtime_world(ctx->rt), 76);
    return tsr_error_set(TSR_ETIMEOUT, "watchdog: step %ld stalled", step);
}
