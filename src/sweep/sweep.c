/* SPDX-License-Identifier: BSD-3-Clause */
/* A sweep over the world: groups of ranks_per_trial ranks, each with a
 * runtime of its own (tsr_runtime_split), train one trial at a time. A
 * group's leader asks rank 0 for work, sending the report of the trial it
 * ran; rank 0, which trains in group 0 as well, answers between its own
 * steps (the training's step hook) and while it has nothing to train.
 * Waits outside training poll and sleep, so an idle rank leaves its core to
 * the ranks that train. */
#include "sweep/internal.h"
#include "common/fileutil.h"
#include "tessera/error.h"
#include "tessera/serve.h"
#include "tessera/train.h"

#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum { TAG_ASK = 7101, TAG_ANSWER = 7102 };

typedef struct sweep_run {
    tsr_runtime_t *rt, *grp;
    const tsr_sweep_options_t *o;
    const tsr_sweep_plan_t *p;
    MPI_Comm comm; /* the exchange with rank 0: a duplicate of the world */
    int rank, groups, leader, quiet, verbose;
    int ended;            /* rank 0: groups told to end */
    sweep_coord_t *coord; /* rank 0 */
    sweep_report_t *rep, *in;
    tsr_serve_t *serve;
} sweep_run_t;

static void nap_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* MPI_Wait without spinning a core the trainings need. */
static int idle_wait(MPI_Request *req)
{
    for (long ms = 0;; ms = ms < 8 ? ms + 1 : 8) {
        int done = 0;
        if (MPI_Test(req, &done, MPI_STATUS_IGNORE) != MPI_SUCCESS)
            return tsr_error_set(TSR_EMPI, "sweep: a wait for the coordinator failed");
        if (done)
            return TSR_OK;
        nap_ms(ms);
    }
}

/* Rank 0: a group's report in, its next assignment out. */
static void handle(sweep_run_t *s, const sweep_report_t *r, sweep_assign_t *a)
{
    if (s->quiet)
        tsr_log_set_level(TSR_LOG_INFO); /* the sweep's own lines, while rank 0 trains quietly */
    if (r->trial >= 0)
        sweep_coord_report(s->coord, r);
    if (tsr_runtime_stop_signal())
        sweep_coord_stop(s->coord);
    sweep_coord_next(s->coord, a);
    s->ended += a->kind == SWEEP_END;
    if (s->quiet)
        tsr_log_set_level(TSR_LOG_WARN);
}

/* Rank 0: answers one waiting ask, if there is one (block: wait for it). */
static int serve_one(sweep_run_t *s, int block)
{
    for (long ms = 0;; ms = ms < 8 ? ms + 1 : 8) {
        int flag = 0;
        MPI_Status st;
        if (MPI_Iprobe(MPI_ANY_SOURCE, TAG_ASK, s->comm, &flag, &st) != MPI_SUCCESS)
            return tsr_error_set(TSR_EMPI, "sweep: rank 0 could not look for asks");
        if (flag) {
            sweep_assign_t a;
            if (MPI_Recv(s->in, (int)sizeof *s->in, MPI_BYTE, st.MPI_SOURCE, TAG_ASK, s->comm, MPI_STATUS_IGNORE) !=
                MPI_SUCCESS)
                return tsr_error_set(TSR_EMPI, "sweep: rank 0 could not receive rank %d's ask", st.MPI_SOURCE);
            handle(s, s->in, &a);
            if (MPI_Send(&a, (int)sizeof a, MPI_BYTE, st.MPI_SOURCE, TAG_ANSWER, s->comm) != MPI_SUCCESS)
                return tsr_error_set(TSR_EMPI, "sweep: rank 0 could not answer rank %d", st.MPI_SOURCE);
            return TSR_OK;
        }
        if (!block)
            return TSR_OK;
        nap_ms(ms);
    }
}

/* The step hook on rank 0: every ask waiting now. */
static void on_step(void *arg, long step)
{
    sweep_run_t *s = arg;
    (void)step;
    int flag = 1;
    while (flag && MPI_Iprobe(MPI_ANY_SOURCE, TAG_ASK, s->comm, &flag, MPI_STATUS_IGNORE) == MPI_SUCCESS && flag)
        if (serve_one(s, 0))
            break;
}

/* The epoch hook on a group's leader: the trial's history. */
static void on_epoch(void *arg, long epoch, double train_loss, double test_loss, double test_accuracy)
{
    sweep_report_t *r = ((sweep_run_t *)arg)->rep;
    if (epoch < 1 || epoch > SWEEP_MAX_EPOCHS)
        return;
    r->hist[epoch - 1] = (sweep_point_t){train_loss, test_loss, test_accuracy};
    if (epoch > r->nhist)
        r->nhist = (int)epoch;
}

/* A leader's ask (with the report of its last trial, trial -1 if none). */
static int ask(sweep_run_t *s, sweep_assign_t *a)
{
    int rc = TSR_OK;
    if (s->rank == 0) {
        handle(s, s->rep, a);
    } else {
        MPI_Request req[2];
        int n = (int)(offsetof(sweep_report_t, hist) + (size_t)s->rep->nhist * sizeof(sweep_point_t));
        if (MPI_Isend(s->rep, n, MPI_BYTE, 0, TAG_ASK, s->comm, &req[0]) != MPI_SUCCESS ||
            MPI_Irecv(a, (int)sizeof *a, MPI_BYTE, 0, TAG_ANSWER, s->comm, &req[1]) != MPI_SUCCESS)
            return tsr_error_set(TSR_EMPI, "sweep: rank %d could not ask rank 0 for a trial", s->rank);
        if (!(rc = idle_wait(&req[0])))
            rc = idle_wait(&req[1]);
    }
    s->rep->trial = -1;
    s->rep->nhist = 0;
    return rc;
}

static int run_trial(sweep_run_t *s, const sweep_assign_t *a)
{
    tsr_config_t *cfg = NULL;
    tsr_train_options_t opt;
    tsr_train_result_t res;
    sweep_report_t *rep = s->rep;
    char dir[4096], model[4200];
    int failed = 0;
    double t0 = tsr_time_now();
    int rc = sweep_trial_config(s->p, s->o, a->trial, &cfg);
    if (!rc)
        rc = tsr_options_train(cfg, &opt);
    if (!rc)
        rc = sweep_trial_dir(s->o, a->trial, dir, sizeof dir);
    /* The model file goes first, so a segment that ends where the checkpoint
     * is evaluates and writes it again (and so reports its metrics). */
    snprintf(model, sizeof model, "%s/model.h5", dir);
    if (!rc && s->leader && !(rc = tsr_mkdir_p(dir)) && unlink(model) != 0 && errno != ENOENT)
        rc = tsr_error_set(TSR_EIO, "sweep: cannot remove %s: %s", model, strerror(errno));
    if (!(rc = tsr_runtime_agree(s->grp, rc, &failed))) {
        opt.until_epoch = a->until_epoch;
        opt.hooks = (tsr_train_hooks_t){s->rank == 0 ? on_step : NULL, s->leader ? on_epoch : NULL, s};
        for (int e = 0; e < SWEEP_MAX_EPOCHS; e++)
            rep->hist[e] = (sweep_point_t){NAN, NAN, NAN};
        s->quiet = !s->verbose;
        if (s->quiet)
            tsr_log_set_level(TSR_LOG_WARN);
        rc = tsr_train_run(s->grp, &opt, &res, &failed);
        tsr_log_set_level(TSR_LOG_INFO);
        s->quiet = 0;
    }
    rep->trial = a->trial;
    rep->level = a->level;
    rep->rc = rc;
    rep->train_loss = rep->test_loss = rep->test_accuracy = NAN;
    rep->error[0] = '\0';
    if (rc && rc != TSR_ESTOPPED) {
        /* The rank that failed explains it to its group's leader. */
        int who = failed >= 0 && failed < tsr_runtime_size(s->grp) ? failed : 0;
        snprintf(rep->error, sizeof rep->error, "%s", tsr_last_error());
        MPI_Bcast(rep->error, (int)sizeof rep->error, MPI_CHAR, who, tsr_runtime_world(s->grp));
        rep->error[sizeof rep->error - 1] = '\0';
    } else if (!rc) {
        rep->train_loss = res.train_loss;
        rep->test_loss = res.test_loss;
        rep->test_accuracy = res.test_accuracy;
    }
    rep->seconds = tsr_time_now() - t0;
    tsr_config_destroy(cfg);
    /* A trial's failure is its own; a stop or a broken MPI ends the sweep. */
    return rc == TSR_ESTOPPED || rc == TSR_EMPI || rc == TSR_ETIMEOUT ? rc : TSR_OK;
}

/* Every rank: assignments until told to end. */
static int work(sweep_run_t *s)
{
    MPI_Comm g = tsr_runtime_world(s->grp);
    int rc = TSR_OK, stop = 0;
    for (;;) {
        sweep_assign_t a = {SWEEP_END, 0, -1, 0};
        if (s->leader && (rc = ask(s, &a)))
            return rc;
        MPI_Request req;
        if (MPI_Ibcast(&a, (int)sizeof a, MPI_BYTE, 0, g, &req) != MPI_SUCCESS || idle_wait(&req))
            return tsr_error_set(TSR_EMPI, "sweep: rank %d: the group's broadcast of a trial failed", s->rank);
        if (a.kind == SWEEP_END)
            return stop;
        if (a.kind == SWEEP_WAIT) {
            if (s->rank == 0)
                rc = serve_one(s, 1);
            else if (s->leader)
                nap_ms(20);
            if (rc)
                return rc;
            continue;
        }
        rc = run_trial(s, &a);
        if (rc == TSR_ESTOPPED)
            stop = rc; /* tell rank 0, which ends every group */
        else if (rc)
            return rc;
    }
}

static void publish(void *arg, const char *json) { tsr_serve_publish_sweep(arg, json); }

/* Rank 0: the coordinator's table, and the HTTP coordinator if [serve]
 * enabled in the base configuration. */
static int start_coord(sweep_run_t *s, const tsr_train_options_t *base)
{
    int rc = sweep_coord_create(s->p, s->o, s->groups, &s->coord);
    if (!rc && base->serve_enabled && !(rc = tsr_serve_create(&base->serve, &s->serve))) {
        sweep_coord_on_change(s->coord, publish, s->serve);
        tsr_log(TSR_LOG_INFO, "sweep: the coordinator answers GET /sweep on port %d", tsr_serve_port(s->serve));
    }
    if (!rc)
        rc = sweep_coord_write(s->coord);
    return rc;
}

static int base_options(const tsr_sweep_options_t *o, tsr_config_t **cfg, tsr_train_options_t *base)
{
    int rc = tsr_config_create(cfg);
    if (!rc)
        rc = tsr_config_load(*cfg, o->config);
    for (int i = 0; !rc && i < o->nsets; i++)
        rc = tsr_config_set(*cfg, o->sets[i]);
    return rc ? rc : tsr_options_train(*cfg, base);
}

int tsr_sweep_run(tsr_runtime_t *rt, const tsr_sweep_options_t *o, tsr_sweep_result_t *res, int *failed_rank)
{
    sweep_run_t s = {.rt = rt, .o = o, .rank = tsr_runtime_rank(rt), .comm = MPI_COMM_NULL};
    tsr_sweep_plan_t *plan = NULL;
    tsr_config_t *cfg = NULL;
    tsr_train_options_t base;
    int size = tsr_runtime_size(rt), k = o->ranks_per_trial;
    memset(res, 0, sizeof *res);
    res->best = -1;
    *failed_rank = 0;
    /* Every rank parses the same arguments: the same answer everywhere. */
    int rc = base_options(o, &cfg, &base);
    if (!rc)
        rc = tsr_sweep_plan_create(o, &plan);
    if (!rc && size % k != 0)
        rc = tsr_error_set(TSR_EINVAL, "sweep: --ranks-per-trial %d does not divide the job's %d ranks", k, size);
    if (rc)
        goto out;
    s.p = plan;
    s.groups = size / k;
    s.leader = s.rank % k == 0;
    s.verbose = base.runtime.verbose;
    s.rep = calloc(1, sizeof *s.rep);
    s.in = calloc(1, sizeof *s.in);
    rc = s.rep && s.in ? TSR_OK : tsr_error_set(TSR_ENOMEM, "sweep: out of memory");
    if (!rc && s.rank == 0)
        rc = start_coord(&s, &base);
    if ((rc = tsr_runtime_agree(rt, rc, failed_rank)))
        goto out;
    s.rep->trial = -1;
    if (MPI_Comm_dup(tsr_runtime_world(rt), &s.comm) != MPI_SUCCESS) {
        rc = tsr_error_set(TSR_EMPI, "sweep: MPI_Comm_dup failed");
        goto out;
    }
    if ((rc = tsr_runtime_split(rt, s.rank / k, s.rank, &s.grp)))
        goto out;
    if (s.rank == 0)
        tsr_log(TSR_LOG_INFO, "sweep: %ld trials of %s, %d groups of %d rank%s%s, results in %s", plan->trials,
                o->config, s.groups, k, k == 1 ? "" : "s", plan->nrungs ? ", successive halving" : "", o->dir);
    rc = work(&s);
    /* Rank 0 answers until every group was told to end. */
    int stopped = rc == TSR_ESTOPPED;
    if (stopped)
        rc = TSR_OK;
    while (!rc && s.rank == 0 && s.ended < s.groups)
        rc = serve_one(&s, 1);
    if (rc) {
        *failed_rank = s.rank;
        tsr_log(TSR_LOG_ERROR, "%s", tsr_last_error());
        MPI_Abort(tsr_runtime_world(rt), 1); /* the others wait on rank 0 or their group */
    }
    if (s.rank == 0) {
        rc = sweep_coord_finish(s.coord, base.serve.registry, base.serve.max_model_params, res);
        if (!rc && sweep_coord_stopped(s.coord))
            rc = TSR_ESTOPPED;
    }
    /* Rank 0's verdict and the summary, everywhere. */
    int code = rc;
    MPI_Bcast(&code, 1, MPI_INT, 0, s.comm);
    MPI_Bcast(res, (int)sizeof *res, MPI_BYTE, 0, s.comm);
    rc = code ? code : stopped ? TSR_ESTOPPED : TSR_OK;
out:
    tsr_runtime_destroy(s.grp);
    if (s.comm != MPI_COMM_NULL)
        MPI_Comm_free(&s.comm);
    tsr_serve_destroy(s.serve);
    sweep_coord_destroy(s.coord);
    free(s.rep);
    free(s.in);
    tsr_sweep_plan_destroy(plan);
    tsr_config_destroy(cfg);
    return rc;
}
