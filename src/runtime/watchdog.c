/* SPDX-License-Identifier: BSD-3-Clause */
/* The watchdog over collectives (runtime.h). A wait that passes the limit
 * sends an arrival note to every other rank; a rank that receives one while
 * it waits itself joins in at once, so within moments every waiting rank
 * has told every other. After a grace period the lowest rank that sent a
 * note names the ranks that did not, which are the hung ones whoever they
 * are (rank 0 included), and aborts the job. The note exchange is point to
 * point on a communicator of the watchdog's own, so a collective stuck on
 * the world's communicator does not block it. */
#include "runtime/deadline.h"
#include "runtime/internal.h"
#include "tessera/error.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum { TAG_NOTE = 7101, HOST_LEN = 56, WHAT_LEN = 96, FAST_POLLS = 2000, LIST_MAX = 8 };
#define EPISODE_GAP 0.25 /* seconds without a poll that start a new wait */

struct tsr_wd_peer {
    int pid;
    char host[HOST_LEN];
};

typedef struct {
    long step;
    int expired; /* the sender's own wait passed the limit (else it joined on a note) */
    char what[WHAT_LEN];
} note_t;

/* Sleeps the whole time even when signals arrive (the launcher's SIGTERM
 * while it aborts the job must not cut the wait short). */
static void nap(double seconds)
{
    struct timespec ts = {(time_t)seconds, (long)((seconds - (double)(time_t)seconds) * 1e9)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static double grace_of(double limit) { return limit / 4 < 2 ? 2 : limit / 4 > 10 ? 10 : limit / 4; }

int tsr_runtime_watchdog_start(tsr_runtime_t *rt, double seconds)
{
    int rc;
    if (rt->wd_limit > 0 || seconds <= 0) {
        if (seconds > 0)
            rt->wd_limit = seconds;
        return TSR_OK;
    }
    if ((rc = tsr_deadline_create(seconds, rt->rank, &rt->wd_deadline)))
        return rc;
    /* Until the notes' communicator exists only the deadline can watch. */
    tsr_deadline_arm(rt->wd_deadline, "the watchdog's start-up (a communicator, every rank's host and pid)");
    rt->wd_peers = calloc((size_t)rt->size, sizeof *rt->wd_peers);
    if (!rt->wd_peers)
        return tsr_error_set(TSR_ENOMEM, "rank %d: out of memory for the watchdog's table of %d ranks", rt->rank,
                             rt->size);
    struct tsr_wd_peer me = {.pid = (int)getpid()};
    memcpy(me.host, rt->host, sizeof me.host - 1); /* a long name is cut */
    if (MPI_Comm_dup(rt->world, &rt->wd_comm) != MPI_SUCCESS ||
        MPI_Allgather(&me, (int)sizeof me, MPI_BYTE, rt->wd_peers, (int)sizeof me, MPI_BYTE, rt->world) != MPI_SUCCESS)
        return tsr_error_set(TSR_EMPI, "rank %d: setting up the watchdog's communicator failed", rt->rank);
    tsr_deadline_disarm(rt->wd_deadline);
    rt->wd_limit = seconds;
    return TSR_OK;
}

double tsr_runtime_watchdog_limit(const tsr_runtime_t *rt) { return rt->wd_limit; }

void tsr_runtime_phase(tsr_runtime_t *rt, const char *phase)
{
    rt->wd_phase = phase;
    if (phase)
        tsr_deadline_arm(rt->wd_deadline, phase);
    else
        tsr_deadline_disarm(rt->wd_deadline);
}

void tsr_runtime_watchdog_finalizing(tsr_runtime_t *rt) { tsr_runtime_phase(rt, "the end of the job (MPI_Finalize)"); }

void tsr_runtime_watchdog_close(tsr_runtime_t *rt)
{
    tsr_deadline_destroy(rt->wd_deadline);
    rt->wd_deadline = NULL;
    if (rt->wd_comm != MPI_COMM_NULL)
        MPI_Comm_free(&rt->wd_comm);
    free(rt->wd_peers);
    rt->wd_peers = NULL;
    rt->wd_limit = 0;
}

/* "ranks 1, 4 (host a, pid 12; host b, pid 40)" of the ranks with mark[r] == want. */
static void list_ranks(const tsr_runtime_t *rt, const char *mark, int want, int with_host, char *out, size_t len)
{
    size_t n = 0;
    int count = 0, shown = 0;
    for (int r = 0; r < rt->size; r++)
        count += mark[r] == want;
    n += (size_t)snprintf(out + n, len - n, "rank%s", count == 1 ? "" : "s");
    for (int r = 0; r < rt->size && n < len; r++) {
        if (mark[r] != want)
            continue;
        if (shown == LIST_MAX) {
            n += (size_t)snprintf(out + n, len - n, " and %d more", count - shown);
            break;
        }
        if (with_host)
            n += (size_t)snprintf(out + n, len - n, "%s %d (host %s, pid %d)", shown ? "," : "", r,
                                  rt->wd_peers[r].host, rt->wd_peers[r].pid);
        else
            n += (size_t)snprintf(out + n, len - n, "%s %d", shown ? "," : "", r);
        shown++;
    }
}

/* Where this rank waits, as the note and the report say it. */
static void where(const tsr_runtime_t *rt, note_t *nt)
{
    const char *what = rt->wd_what ? rt->wd_what : "a collective";
    nt->step = rt->wd_step;
    if (rt->wd_step >= 0)
        snprintf(nt->what, sizeof nt->what, "%s of step %ld", what, rt->wd_step);
    else if (rt->wd_phase)
        snprintf(nt->what, sizeof nt->what, "%s (%s)", what, rt->wd_phase);
    else
        snprintf(nt->what, sizeof nt->what, "%s", what);
}

/* Tells everyone this rank waits, learns who else does, names the missing
 * ranks and aborts. Never returns. The report is made by the lowest rank
 * whose own wait expired: a rank that only joined on a note (it started
 * waiting later, or a stopped rank that the launcher's SIGCONT woke while
 * it kills the job) has not seen the whole limit pass. */
static void stall(tsr_runtime_t *rt, int expired)
{
    double grace = grace_of(rt->wd_limit), waited = tsr_time_now() - rt->wd_t0;
    char *arrived = calloc((size_t)rt->size, 1);
    MPI_Request *sent = calloc((size_t)rt->size, sizeof *sent);
    note_t mine, in, other = {0};
    tsr_deadline_disarm(rt->wd_deadline); /* the report below is the watchdog's */
    where(rt, &mine);
    mine.expired = expired;
    if (!arrived || !sent) {
        tsr_log(TSR_LOG_ERROR, "watchdog: rank %d waited %.0f s at %s; aborting the job with exit code 76", rt->rank,
                waited, mine.what);
        MPI_Abort(rt->world, 76);
        _exit(76);
    }
    arrived[rt->rank] = 1;
    int reporter = expired ? rt->rank : rt->size;
    for (int r = 0; r < rt->size; r++)
        if (r != rt->rank)
            MPI_Isend(&mine, (int)sizeof mine, MPI_BYTE, r, TAG_NOTE, rt->wd_comm, &sent[r]);
    int count = 1, differ = 0;
    double t0 = tsr_time_now();
    while (count < rt->size && tsr_time_now() - t0 < grace) {
        int flag = 0;
        MPI_Status st;
        MPI_Iprobe(MPI_ANY_SOURCE, TAG_NOTE, rt->wd_comm, &flag, &st);
        if (!flag) {
            nap(0.005);
            continue;
        }
        MPI_Recv(&in, (int)sizeof in, MPI_BYTE, st.MPI_SOURCE, TAG_NOTE, rt->wd_comm, MPI_STATUS_IGNORE);
        in.what[WHAT_LEN - 1] = '\0';
        if (!arrived[st.MPI_SOURCE])
            count++;
        arrived[st.MPI_SOURCE] = 1;
        if (in.expired && st.MPI_SOURCE < reporter)
            reporter = st.MPI_SOURCE;
        if (strcmp(in.what, mine.what) != 0 && !differ++)
            other = in;
    }
    if (reporter == rt->rank) {
        char missing[1200], waiting[256], elsewhere[160] = "";
        list_ranks(rt, arrived, 0, 1, missing, sizeof missing);
        list_ranks(rt, arrived, 1, 0, waiting, sizeof waiting);
        if (differ)
            snprintf(elsewhere, sizeof elsewhere, " (some at %s)", other.what);
        if (count < rt->size)
            tsr_log(TSR_LOG_ERROR,
                    "watchdog: %s did not arrive at %s within %.0f s (runtime.watchdog_seconds = %g), "
                    "where %s wait%s%s: hung, stopped or on a stalled node; aborting the job with exit code 76",
                    missing, mine.what, waited, rt->wd_limit, waiting, count == 1 ? "s" : "", elsewhere);
        else
            tsr_log(TSR_LOG_ERROR,
                    "watchdog: every rank has waited %.0f s (runtime.watchdog_seconds = %g) at %s%s, "
                    "and none can go on (MPI cannot complete it, or the ranks disagree on it); aborting the job "
                    "with exit code 76",
                    waited, rt->wd_limit, mine.what, elsewhere);
    } else {
        /* The reporter's abort ends this process; only if it does not.
         * Ten seconds for MPI_Abort to reach us: 3 were too few under a
         * loaded CI machine, and a second line then named this rank too. */
        nap(grace + 10);
        tsr_log(TSR_LOG_ERROR,
                "watchdog: rank %d waited %.0f s at %s and the rank that should have reported the "
                "missing ranks did not end the job; aborting with exit code 76",
                rt->rank, tsr_time_now() - rt->wd_t0, mine.what);
    }
    MPI_Abort(rt->world, 76);
    _exit(76);
}

void tsr_runtime_watch_begin(tsr_runtime_t *rt, const char *what, long step)
{
    if (rt->wd_limit <= 0)
        return;
    rt->wd_what = what;
    rt->wd_step = step;
    rt->wd_t0 = rt->wd_last_poll = tsr_time_now();
    rt->wd_polls = 0;
    tsr_deadline_disarm(rt->wd_deadline);
}

void tsr_runtime_watch_poll(tsr_runtime_t *rt)
{
    /* Ranks normally arrive together: the first polls cost a counter. A
     * poll outside begin/end (a wait nobody said to watch) does nothing. */
    if (rt->wd_limit <= 0 || !rt->wd_what || rt->wd_polls++ < FAST_POLLS)
        return;
    /* A gap between polls means a new wait began after compute (a watch
     * may span several, as backward's does), or this rank did not run
     * (stopped with SIGSTOP, or descheduled): either way the time waited
     * for others starts now. */
    double now = tsr_time_now();
    if (now - rt->wd_last_poll > EPISODE_GAP)
        rt->wd_t0 = now;
    rt->wd_last_poll = now;
    int flag = 0;
    MPI_Iprobe(MPI_ANY_SOURCE, TAG_NOTE, rt->wd_comm, &flag, MPI_STATUS_IGNORE);
    int expired = now - rt->wd_t0 > rt->wd_limit;
    if (flag || expired)
        stall(rt, expired);
}

void tsr_runtime_watch_end(tsr_runtime_t *rt)
{
    if (rt->wd_limit <= 0)
        return;
    rt->wd_what = NULL;
    rt->wd_step = -1;
    if (rt->wd_phase) /* the phase's blocking parts are timed afresh */
        tsr_deadline_arm(rt->wd_deadline, rt->wd_phase);
}

int tsr_runtime_wait(tsr_runtime_t *rt, MPI_Request *req, const char *what, long step)
{
    if (rt->wd_limit <= 0)
        return MPI_Wait(req, MPI_STATUS_IGNORE) == MPI_SUCCESS ? TSR_OK
                                                               : tsr_error_set(TSR_EMPI,
                                                                               "rank %d: waiting for %s "
                                                                               "failed",
                                                                               rt->rank, what);
    tsr_runtime_watch_begin(rt, what, step);
    for (;;) {
        int done = 0;
        if (MPI_Test(req, &done, MPI_STATUS_IGNORE) != MPI_SUCCESS) {
            tsr_runtime_watch_end(rt);
            return tsr_error_set(TSR_EMPI, "rank %d: waiting for %s failed", rt->rank, what);
        }
        if (done)
            break;
        tsr_runtime_watch_poll(rt);
        if (rt->wd_polls > FAST_POLLS)
            nap(tsr_time_now() - rt->wd_t0 < 1 ? 50e-6 : 1e-3);
    }
    tsr_runtime_watch_end(rt);
    return TSR_OK;
}

static int started(tsr_runtime_t *rt, int err, const char *what)
{
    return err == MPI_SUCCESS ? TSR_OK : tsr_error_set(TSR_EMPI, "rank %d: starting %s failed", rt->rank, what);
}

int tsr_runtime_allreduce(tsr_runtime_t *rt, const void *in, void *out, int count, MPI_Datatype type, MPI_Op op,
                          const char *what, long step)
{
    MPI_Request req;
    int rc = started(rt, MPI_Iallreduce(in, out, count, type, op, rt->world, &req), what);
    return rc ? rc : tsr_runtime_wait(rt, &req, what, step);
}

int tsr_runtime_bcast(tsr_runtime_t *rt, void *buf, int count, MPI_Datatype type, int root, const char *what)
{
    MPI_Request req;
    int rc = started(rt, MPI_Ibcast(buf, count, type, root, rt->world, &req), what);
    return rc ? rc : tsr_runtime_wait(rt, &req, what, -1);
}

int tsr_runtime_gather(tsr_runtime_t *rt, const void *in, int count, MPI_Datatype type, void *out, int root,
                       const char *what, long step)
{
    MPI_Request req;
    int rc = started(rt, MPI_Igather(in, count, type, out, count, type, root, rt->world, &req), what);
    return rc ? rc : tsr_runtime_wait(rt, &req, what, step);
}

int tsr_runtime_barrier(tsr_runtime_t *rt, const char *what)
{
    MPI_Request req;
    int rc = started(rt, MPI_Ibarrier(rt->world, &req), what);
    return rc ? rc : tsr_runtime_wait(rt, &req, what, -1);
}
