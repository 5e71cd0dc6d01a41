/* SPDX-License-Identifier: BSD-3-Clause */
/* tsr_tasks_run: every rank runs one loop on its main thread (the only
 * one that calls MPI): messages in, its tasks reaped, started and timed
 * out, events out; rank 0 also dispatches, journals and answers the
 * coordinator's requests. Between passes a rank waits in poll() on its
 * tasks' pidfds (and rank 0 on the coordinator's eventfd), for at most a
 * short quantum while messages may arrive (MPI has no descriptor to wait
 * on; blocking MPI calls would spin a core the tasks need). */
#include "tasks/farm.h"
#include "tasks/msgq.h"
#include "tasks/proto.h"
#include "tasks/res.h"
#include "tessera/error.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { MAX_POLL = 1024 };

void tsr_tasks_run_opts_default(tsr_tasks_run_opts_t *o)
{
    memset(o, 0, sizeof *o);
    o->drain_s = 60;
    o->kill_grace_s = 5;
    o->walltime_margin_s = 120;
    o->gpus_per_rank = -1;
    o->fsync_ms = 5;
    o->progress_s = 10;
}

typedef struct loop {
    tsr_runtime_t *rt;
    MPI_Comm comm;
    int rank, world;
    worker_t *w;
    disp_t *d;
    msgq_t mq;
    double margin, next_progress;
    int byes, sent_bye;
    tsr_perf_t *perf; /* seconds tending tasks against the rest (farm_perf.c) */
} loop_t;

/* Every message waiting; returns how many. */
static int receive(loop_t *L)
{
    int n = 0, src, tag;
    while (msgq_recv(&L->mq, MPI_ANY_SOURCE, &src, &tag)) {
        const tbuf_t *in = &L->mq.in;
        if (tag == TAG_EVENTS && L->d)
            disp_events(L->d, src, in->p, in->len);
        else if (tag == TAG_RUN)
            worker_run(L->w, in->p, in->len);
        else if (tag == TAG_CTL)
            worker_ctl(L->w, in->p, in->len);
        n++;
    }
    return n;
}

/* Rank 0: what the dispatcher wrote for each rank goes out (its own
 * worker takes it directly). */
static int flush_disp(loop_t *L)
{
    disp_t *d = L->d;
    int n = 0;
    for (int r = 0; r < L->world; r++) {
        if (d->ctl[r].len) {
            if (r == 0)
                worker_ctl(L->w, d->ctl[r].p, d->ctl[r].len), d->ctl[r].len = 0;
            else
                msgq_send(&L->mq, r, TAG_CTL, &d->ctl[r]);
            n++;
        }
        if (d->out[r].len) {
            if (r == 0)
                worker_run(L->w, d->out[r].p, d->out[r].len), d->out[r].len = 0;
            else
                msgq_send(&L->mq, r, TAG_RUN, &d->out[r]);
            n++;
        }
    }
    return n;
}

static double walltime_margin(loop_t *L, const tsr_tasks_run_opts_t *o)
{
    const tsr_slurm_facts_t *f = tsr_runtime_slurm(L->rt);
    if (!f->in_slurm || o->walltime_margin_s < 0)
        return -1;
    double limit = tsr_runtime_walltime_limit(L->rt), left = tsr_runtime_walltime_left(L->rt);
    tsr_log(TSR_LOG_INFO, "SLURM job %ld step %ld (run %d) on %s; walltime left %.0f s, margin %.0f s", f->job_id,
            f->step_id, f->restart_count + 1, f->nodelist, left, o->walltime_margin_s);
    if (limit > 0 && o->walltime_margin_s >= limit) {
        tsr_log(TSR_LOG_WARN,
                "walltime: the margin of %.0f s is not less than the job's time limit of %.0f s: the "
                "margin is off (lower --walltime-margin or ask for more time)",
                o->walltime_margin_s, limit);
        return -1;
    }
    return o->walltime_margin_s;
}

/* Rank 0, each pass: stops, the coordinator, dispatching, the end. */
static int dispatch_pass(loop_t *L, double now)
{
    disp_t *d = L->d;
    int sig = tsr_runtime_stop_signal(), work = 0;
    const char *msg;
    if (sig)
        disp_stop(d, sig, "stop requested by signal %d (%s)", sig, strsignal(sig));
    if (L->margin >= 0 && !d->stopping) {
        double left = tsr_runtime_walltime_left(L->rt);
        if (left >= 0 && left < L->margin)
            disp_stop(d, SIGUSR1, "walltime: %.0f s left, under the margin of %.0f s: stopping", left, L->margin);
    }
    if (d->j && journal_error(d->j, &msg) && !d->stopping) {
        tsr_error_set(TSR_EIO, "%s", msg);
        disp_stop(d, 0, "%s; dispatching stopped", msg);
        d->result = TSR_EIO;
    }
    requests_drain(d);
    work += disp_dispatch(d);
    if (now - d->rate_t >= 1) {
        d->rate = (double)(d->attempts_done - d->rate_n) / (now - d->rate_t);
        d->rate_n = d->attempts_done;
        d->rate_t = now;
    }
    if (d->o->progress_s > 0 && now >= L->next_progress) {
        summary_progress(d, now);
        L->next_progress = now + d->o->progress_s;
    }
    if (!d->ended && disp_finished(d)) {
        d->ended = 1;
        if (!d->result) {
            uint64_t bad = d->s.count[TSR_TASK_FAILED] + d->s.count[TSR_TASK_SKIPPED] + d->s.count[TSR_TASK_CANCELLED];
            if (d->stopping && sched_final(&d->s) < sched_total(&d->s))
                d->result = TSR_ESTOPPED;
            else
                d->result = bad ? TSR_ETASKS : TSR_OK;
        }
        for (int r = 0; r < L->world; r++) {
            tbuf_u8(&d->ctl[r], CTL_EXIT);
            tbuf_u32(&d->ctl[r], (uint32_t)d->result);
        }
        work++;
    }
    return work + flush_disp(L);
}

static int run_loop(loop_t *L)
{
    struct pollfd fds[MAX_POLL + 1];
    double quantum = 5e-5;
    int code = TSR_OK;
    for (;;) {
        disp_t *d = L->d;
        if (d)
            pthread_mutex_lock(&d->mu);
        double now = tnow();
        int work = L->world > 1 ? receive(L) : 0;
        if (d)
            work += dispatch_pass(L, now);
        else if (tsr_runtime_stop_signal())
            worker_stop_request(L->w, tsr_runtime_stop_signal());
        tsr_perf_phase(L->perf, TSR_PHASE_TASK);
        double timer = worker_step(L->w, now);
        tsr_perf_phase(L->perf, TSR_PHASE_OTHER);
        tbuf_t *ev = worker_events(L->w);
        int exited = worker_exited(L->w, &code);
        if (exited && L->rank != 0 && !L->sent_bye) {
            tbuf_u8(ev, EV_BYE);
            L->sent_bye = 1;
        }
        if (ev->len) {
            work++;
            if (d) {
                disp_events(d, 0, ev->p, ev->len);
                ev->len = 0;
            } else {
                msgq_send(&L->mq, 0, TAG_EVENTS, ev);
            }
        }
        int done = 0;
        if (d && d->ended) {
            int byes = 1;
            for (int r = 1; r < L->world; r++)
                byes += d->ranks[r].bye;
            done = exited && byes == L->world;
        } else if (!d) {
            done = exited;
        }
        if (d)
            pthread_mutex_unlock(&d->mu);
        if (done)
            break;
        /* Wait for a task to end, a request, or the quantum. */
        int fast = 0, nfd = worker_pollfds(L->w, fds, MAX_POLL, &fast);
        if (d && d->efd >= 0)
            fds[nfd++] = (struct pollfd){.fd = d->efd, .events = POLLIN};
        double wait = work ? 0 : (L->world > 1 ? quantum : 0.5);
        if (fast && wait > 0.005)
            wait = 0.005;
        if (timer > 0 && timer - now < wait)
            wait = timer - now > 0 ? timer - now : 0;
        if (d && d->o->progress_s > 0 && L->next_progress - now < wait)
            wait = L->next_progress - now > 0 ? L->next_progress - now : 0;
        quantum = work ? 5e-5 : fmin(quantum * 2, 2e-3);
        if (poll(fds, (nfds_t)nfd, (int)ceil(wait * 1e3)) > 0 && d && d->efd >= 0 && (fds[nfd - 1].revents & POLLIN)) {
            uint64_t v;
            if (read(d->efd, &v, sizeof v) < 0) {
            }
        }
        if (L->world > 1)
            msgq_reap(&L->mq, 0);
    }
    if (L->world > 1)
        msgq_reap(&L->mq, 1);
    return code;
}

/* Waits for a request while sleeping between tests: Open MPI's blocking
 * calls poll at full speed, which takes a core from rank 0 while it replays
 * a long journal (or from running tasks). */
static void wait_politely(MPI_Request *req)
{
    int done = 0;
    useconds_t us = 50;
    for (MPI_Test(req, &done, MPI_STATUS_IGNORE); !done; MPI_Test(req, &done, MPI_STATUS_IGNORE)) {
        usleep(us);
        if (us < 2000)
            us *= 2;
    }
}

/* tsr_runtime_agree's contract (the lowest failing rank's code on every
 * rank), waited for politely. */
static int agree(loop_t *L, int rc, int *failed)
{
    int mine = rc != TSR_OK ? L->rank : L->world, first = L->world, code = rc;
    MPI_Request req;
    if (MPI_Iallreduce(&mine, &first, 1, MPI_INT, MPI_MIN, L->comm, &req) != MPI_SUCCESS)
        return tsr_error_set(TSR_EMPI, "rank %d: MPI_Iallreduce failed while agreeing", L->rank);
    wait_politely(&req);
    *failed = first < L->world ? first : -1;
    if (first == L->world)
        return TSR_OK;
    if (MPI_Ibcast(&code, 1, MPI_INT, first, L->comm, &req) != MPI_SUCCESS)
        return tsr_error_set(TSR_EMPI, "rank %d: MPI_Ibcast failed while agreeing", L->rank);
    wait_politely(&req);
    return code;
}

typedef struct rankmsg {
    int cores, gpus;
    char host[64], place[160];
} rankmsg_t;

/* Rank 0: the table, the journal, the coordinator. */
static int setup_root(loop_t *L, const tsr_tasks_run_opts_t *o, const rankinfo_t *ranks)
{
    disp_t *d = calloc(1, sizeof *d);
    if (!d)
        return tsr_error_set(TSR_ENOMEM, "tasks: out of memory");
    L->d = d;
    int rc = disp_init(d, L->rt, o, ranks);
    if (rc)
        return rc;
    if (!getcwd(d->cwd, sizeof d->cwd))
        return tsr_error_set(TSR_ESYS, "tasks: cannot read the working directory");
    char out[4096];
    if (o->output_dir)
        snprintf(out, sizeof out, "%s", o->output_dir);
    else if (o->journal_dir)
        snprintf(out, sizeof out, "%s/output", o->journal_dir);
    else
        snprintf(out, sizeof out, "tasks-output");
    if (out[0] == '/')
        snprintf(d->outdir, sizeof d->outdir, "%s", out);
    else if ((size_t)snprintf(d->outdir, sizeof d->outdir, "%s/%s", d->cwd, out) >= sizeof d->outdir)
        return tsr_error_set(TSR_EINVAL, "tasks: output directory path too long");
    if ((rc = replay_load(d)))
        return rc;
    if (o->serve) {
        if ((rc = requests_init(d)) || (rc = tsr_serve_create(o->serve, &d->serve)))
            return rc;
        tsr_serve_tasks_t ops;
        requests_ops(d, &ops);
        tsr_serve_set_tasks(d->serve, &ops);
    }
    int cores = 0, gpus = 0;
    for (int r = 0; r < L->world; r++)
        cores += ranks[r].cores, gpus += ranks[r].gpus;
    uint64_t left = sched_total(&d->s) - sched_final(&d->s);
    tsr_log(TSR_LOG_INFO, "tasks: %llu tasks (%llu to run) on %d rank%s, %d cores, %d GPUs; %s%s; output in %s",
            (unsigned long long)sched_total(&d->s), (unsigned long long)left, L->world, L->world == 1 ? "" : "s", cores,
            gpus, d->j ? "journal " : "no journal", d->j ? journal_path(d->j) : "", d->outdir);
    L->margin = walltime_margin(L, o);
    L->next_progress = tnow() + o->progress_s;
    return TSR_OK;
}

static void teardown_root(loop_t *L)
{
    disp_t *d = L->d;
    if (!d)
        return;
    if (d->serve) {
        tsr_serve_set_tasks(d->serve, NULL);
        tsr_serve_destroy(d->serve);
    }
    requests_free(d);
    journal_close(d->j);
    disp_free(d);
    free(d);
    L->d = NULL;
}

int tsr_tasks_run(tsr_runtime_t *rt, const tsr_tasks_run_opts_t *o)
{
    loop_t L;
    memset(&L, 0, sizeof L);
    L.rt = rt;
    L.comm = tsr_runtime_world(rt);
    L.rank = tsr_runtime_rank(rt);
    L.world = tsr_runtime_size(rt);
    msgq_init(&L.mq, L.comm);
    farm_res_t res;
    rankmsg_t mine;
    memset(&mine, 0, sizeof mine);
    int rc = res_detect(rt, o, &res), failed = -1;
    if (rc == TSR_OK) {
        worker_res_t wr = {res.topo,        res.cpuset, o->reserve_core && L.rank == 0,
                           res.gpus,        res.ngpus,  res.hide_gpus,
                           o->kill_grace_s, L.rank};
        rc = worker_create(&wr, &L.w);
    }
    if (rc == TSR_OK) {
        mine.cores = worker_ncores(L.w);
        mine.gpus = worker_ngpus(L.w);
        snprintf(mine.host, sizeof mine.host, "%s", tsr_runtime_hostname(rt));
        snprintf(mine.place, sizeof mine.place, "%s", worker_place(L.w));
    }
    rankmsg_t *all = L.rank == 0 ? calloc((size_t)L.world, sizeof *all) : NULL;
    rankinfo_t *ranks = L.rank == 0 ? calloc((size_t)L.world, sizeof *ranks) : NULL;
    if (rc == TSR_OK)
        rc = tsr_perf_create(NULL, &L.perf);
    if (L.rank == 0 && (!all || !ranks) && rc == TSR_OK)
        rc = tsr_error_set(TSR_ENOMEM, "tasks: out of memory for %d ranks", L.world);
    if ((rc = agree(&L, rc, &failed)))
        goto done;
    MPI_Request req;
    MPI_Igather(&mine, (int)sizeof mine, MPI_BYTE, all, (int)sizeof mine, MPI_BYTE, 0, L.comm, &req);
    wait_politely(&req);
    if (L.rank == 0) {
        for (int r = 0; r < L.world; r++) {
            ranks[r].cores = all[r].cores;
            ranks[r].gpus = all[r].gpus;
            memcpy(ranks[r].host, all[r].host, sizeof ranks[r].host);
            memcpy(ranks[r].place, all[r].place, sizeof ranks[r].place);
        }
        rc = setup_root(&L, o, ranks);
    }
    if ((rc = agree(&L, rc, &failed)))
        goto done;
    rc = run_loop(&L);
    if (L.d)
        summary_print(L.d);
    farm_perf_report(L.rank, L.perf);
    if (L.d) {
        disp_journal_end(L.d, L.d->stopping && rc == TSR_ESTOPPED);
        const char *msg;
        if (L.d->j && journal_sync(L.d->j) && journal_error(L.d->j, &msg) && (rc == TSR_OK || rc == TSR_ETASKS))
            rc = tsr_error_set(TSR_EIO, "%s", msg);
        if (rc == TSR_ESTOPPED)
            tsr_log(TSR_LOG_INFO, "tasks: stopped; run the farm again on its journal to finish (exiting with "
                                  "status 75)");
    }
done:
    if (failed >= 0 && failed != L.rank)
        tsr_error_clear(); /* the rank that failed says why */
    teardown_root(&L);
    worker_destroy(L.w);
    res_free(&res);
    free(all);
    free(ranks);
    tsr_perf_destroy(L.perf);
    msgq_free(&L.mq);
    return rc;
}
