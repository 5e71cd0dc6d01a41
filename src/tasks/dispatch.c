/* SPDX-License-Identifier: BSD-3-Clause */
/* Rank 0's dispatcher: the best ready task (priority, then age) among the
 * resource shapes that fit somewhere goes to the rank where it fits best;
 * a rank may hold one task per core beyond what runs (lookahead) while
 * tasks are short, so it never waits a message's round trip for its next
 * one, and hands that queue back when another rank runs dry (stealing).
 * Workers' events move the scheduler and the journal. */
#include "tasks/farm.h"
#include "tasks/proto.h"
#include "common/fileutil.h"
#include "tessera/error.h"

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { MAX_FAIL_LINES = 20 };

int disp_init(disp_t *d, tsr_runtime_t *rt, const tsr_tasks_run_opts_t *o, const rankinfo_t *ranks)
{
    memset(d, 0, sizeof *d);
    d->rt = rt;
    d->o = o;
    d->world = tsr_runtime_size(rt);
    d->efd = -1;
    ttable_init(&d->tt);
    sched_init(&d->s, &d->tt);
    pthread_mutex_init(&d->mu, NULL);
    pthread_mutex_init(&d->qmu, NULL);
    d->ranks = calloc((size_t)d->world, sizeof *d->ranks);
    d->out = calloc((size_t)d->world, sizeof *d->out);
    d->ctl = calloc((size_t)d->world, sizeof *d->ctl);
    if (!d->ranks || !d->out || !d->ctl)
        return tsr_error_set(TSR_ENOMEM, "tasks: out of memory for %d ranks", d->world);
    memcpy(d->ranks, ranks, (size_t)d->world * sizeof *ranks);
    for (int r = 0; r < d->world; r++) {
        if (ranks[r].cores > d->max_cores)
            d->max_cores = ranks[r].cores;
        if (ranks[r].gpus > d->max_gpus)
            d->max_gpus = ranks[r].gpus;
    }
    d->lookahead = 1;
    d->t0 = d->rate_t = tnow();
    return TSR_OK;
}

void disp_free(disp_t *d)
{
    for (int r = 0; r < d->world && d->out; r++) {
        tbuf_free(&d->out[r]);
        tbuf_free(&d->ctl[r]);
    }
    free(d->out);
    free(d->ctl);
    free(d->ranks);
    sched_free(&d->s);
    ttable_free(&d->tt);
    pthread_mutex_destroy(&d->mu);
    pthread_mutex_destroy(&d->qmu);
}

int disp_outstanding(const disp_t *d)
{
    int n = 0;
    for (int r = 0; r < d->world; r++)
        n += d->ranks[r].assigned;
    return n;
}

int disp_finished(const disp_t *d)
{
    if (disp_outstanding(d))
        return 0;
    if (d->stopping)
        return 1;
    return !d->o->keep_alive && sched_final(&d->s) == sched_total(&d->s);
}

/* Room on rank r for a task of this shape; extra 1 counts the lookahead. */
static int fits(const rankinfo_t *k, int cores, int gpus, int extra)
{
    return k->used_cores + cores <= k->cores * (1 + extra) && k->used_gpus + gpus <= k->gpus * (1 + extra) &&
           cores <= k->cores && gpus <= k->gpus;
}

static int pick_rank(const disp_t *d, int cores, int gpus)
{
    int best = -1;
    for (int r = 0; r < d->world; r++) {
        const rankinfo_t *k = &d->ranks[r];
        /* Best fit: the least room left after it, so big holes stay whole. */
        if (fits(k, cores, gpus, 0) &&
            (best < 0 || k->cores - k->used_cores < d->ranks[best].cores - d->ranks[best].used_cores))
            best = r;
    }
    if (best >= 0 || !d->lookahead)
        return best;
    for (int r = 0; r < d->world; r++) {
        const rankinfo_t *k = &d->ranks[r];
        double q = (double)(k->assigned - k->started) / k->cores;
        if (fits(k, cores, gpus, 1) &&
            (best < 0 || q < (double)(d->ranks[best].assigned - d->ranks[best].started) / d->ranks[best].cores))
            best = r;
    }
    return best;
}

/* "{id}", "{attempt}" and "{rank}" in an output pattern; relative paths
 * from the farm's directory. */
void disp_out_path(const disp_t *d, const task_t *t, const char *pat, const char *ext, int rank, char *buf, size_t len)
{
    char tmp[4096];
    size_t o = 0;
    if (!pat) {
        snprintf(tmp, sizeof tmp, "%s.%s", t->id, ext);
        o = strlen(tmp);
    }
    for (const char *p = pat; p && *p && o + 1 < sizeof tmp; p++) {
        if (strncmp(p, "{id}", 4) == 0) {
            o += (size_t)snprintf(tmp + o, sizeof tmp - o, "%s", t->id);
            p += 3;
        } else if (strncmp(p, "{attempt}", 9) == 0) {
            o += (size_t)snprintf(tmp + o, sizeof tmp - o, "%u", t->attempts);
            p += 8;
        } else if (strncmp(p, "{rank}", 6) == 0) {
            o += (size_t)snprintf(tmp + o, sizeof tmp - o, "%d", rank);
            p += 5;
        } else {
            tmp[o++] = *p;
        }
        if (o >= sizeof tmp)
            o = sizeof tmp - 1;
    }
    tmp[o] = '\0';
    if (tsr_path_join(d->outdir, tmp, buf, len))
        snprintf(buf, len, "%s", tmp);
}

static void assign(disp_t *d, uint32_t i, int r)
{
    task_t *t = &d->tt.t[i];
    rankinfo_t *k = &d->ranks[r];
    t->attempts++;
    t->rank = (int16_t)r;
    t->started = 0;
    t->cancel = 0;
    sched_set(&d->s, i, TSR_TASK_RUNNING);
    k->used_cores += t->cores;
    k->used_gpus += t->gpus;
    k->assigned++;
    d->dispatched++;
    char out[4096], err[4096], cwd[4096];
    const task_ext_t *x = t->ext;
    disp_out_path(d, t, x ? x->out : NULL, "out", r, out, sizeof out);
    disp_out_path(d, t, x ? x->err : NULL, "err", r, err, sizeof err);
    if (!x || !x->cwd || tsr_path_join(d->cwd, x->cwd, cwd, sizeof cwd))
        snprintf(cwd, sizeof cwd, "%s", d->cwd);
    tbuf_t *b = &d->out[r];
    tbuf_u32(b, i);
    tbuf_u16(b, t->attempts);
    tbuf_u16(b, t->cores);
    tbuf_u16(b, t->gpus);
    tbuf_f64(b, t->timeout_s);
    tbuf_str(b, t->id);
    tbuf_str(b, t->cmd);
    tbuf_str(b, cwd);
    tbuf_str(b, out);
    tbuf_str(b, err);
    tbuf_u32(b, x ? x->nenv : 0);
    for (uint32_t e = 0; x && e < x->nenv; e++)
        tbuf_str(b, x->env[e]);
}

/* Ranks with room but nothing to run: the ones holding unstarted tasks
 * hand them back, to be dispatched again where there is room. */
static void steal(disp_t *d)
{
    int idle = 0;
    for (int r = 0; r < d->world && !idle; r++)
        idle = d->ranks[r].used_cores < d->ranks[r].cores;
    if (!idle || d->s.count[TSR_TASK_READY])
        return;
    for (int r = 0; r < d->world; r++) {
        rankinfo_t *k = &d->ranks[r];
        if (k->assigned > k->started && !k->revoking) {
            k->revoking = 1;
            tbuf_u8(&d->ctl[r], CTL_REVOKE);
        }
    }
}

int disp_dispatch(disp_t *d)
{
    if (d->stopping)
        return 0;
    sched_tick(&d->s, tnow());
    int n = 0;
    for (;;) {
        uint32_t best = TASK_NONE;
        int bk = -1, br = -1;
        for (int k = 0; k < d->s.nshape; k++) {
            uint32_t h = sched_head(&d->s, k);
            if (h == TASK_NONE)
                continue;
            const task_t *t = &d->tt.t[h];
            if (best != TASK_NONE && (t->prio < d->tt.t[best].prio || (t->prio == d->tt.t[best].prio && h > best)))
                continue;
            int r = pick_rank(d, t->cores, t->gpus);
            if (r >= 0) {
                best = h;
                bk = k;
                br = r;
            }
        }
        if (best == TASK_NONE)
            break;
        sched_take(&d->s, bk);
        assign(d, best, br);
        n++;
    }
    if (!n && d->world > 1)
        steal(d);
    return n;
}

static void journal_start(disp_t *d, const task_t *t, int rank)
{
    if (!d->j)
        return;
    tbuf_t *b = journal_begin(d->j, J_START);
    tbuf_str(b, t->id);
    tbuf_u16(b, t->attempts);
    tbuf_u16(b, (unsigned)rank);
    tbuf_f64(b, t->t_start);
    tbuf_str(b, t->where);
    journal_end(d->j);
}

static void journal_finish(disp_t *d, const task_t *t, int state)
{
    if (!d->j)
        return;
    tbuf_t *b = journal_begin(d->j, J_FINISH);
    tbuf_str(b, t->id);
    tbuf_u16(b, t->attempts);
    tbuf_u8(b, t->how);
    tbuf_u32(b, (uint32_t)t->code);
    tbuf_u8(b, (unsigned)state);
    tbuf_f64(b, t->t_start);
    tbuf_f64(b, t->t_end);
    tbuf_u16(b, (unsigned)(t->rank < 0 ? 0 : t->rank));
    tbuf_str(b, state == TSR_TASK_SUCCEEDED ? NULL : t->tail);
    journal_end(d->j);
}

void disp_journal_submit(disp_t *d, const char *origin, const char *text, size_t len)
{
    if (!d->j)
        return;
    tbuf_t *b = journal_begin(d->j, J_SUBMIT);
    tbuf_f64(b, tunix());
    tbuf_str(b, origin);
    tbuf_u32(b, (uint32_t)len);
    tbuf_put(b, text, len);
    journal_end(d->j);
}

void disp_journal_end(disp_t *d, int stop)
{
    if (!d->j)
        return;
    tbuf_t *b = journal_begin(d->j, stop ? J_STOP : J_END);
    tbuf_f64(b, tunix());
    if (stop) {
        tbuf_u32(b, (uint32_t)d->stop_sig);
        tbuf_str(b, d->stop_reason);
    }
    journal_end(d->j);
}

static void failed_line(disp_t *d, const task_t *t)
{
    static int shown;
    if (shown++ >= MAX_FAIL_LINES) {
        if (shown == MAX_FAIL_LINES + 1)
            tsr_log(TSR_LOG_WARN, "tasks: more tasks failed; the summary at the end lists them");
        return;
    }
    char how[64];
    if (t->how == HOW_EXITED || t->how == HOW_SPAWN)
        snprintf(how, sizeof how, "exit %d", t->code);
    else if (t->how == HOW_SIGNALED)
        snprintf(how, sizeof how, "killed by signal %d", t->code);
    else
        snprintf(how, sizeof how, "%s", task_how_name(t->how));
    tsr_log(TSR_LOG_WARN, "tasks: task %s failed (%s) after %u attempt%s on rank %d", t->id, how, t->attempts,
            t->attempts == 1 ? "" : "s", t->rank);
}

static void on_done(disp_t *d, int rank, tcur_t *c)
{
    uint32_t i = tcur_u32(c);
    unsigned attempt = tcur_u16(c), how = tcur_u8(c);
    int code = (int)tcur_u32(c);
    double start = tcur_f64(c), end = tcur_f64(c);
    size_t tl;
    const char *tail = tcur_str(c, &tl);
    if (!c->ok || i >= d->tt.n)
        return;
    task_t *t = &d->tt.t[i];
    if (t->state != TSR_TASK_RUNNING || t->attempts != attempt || t->rank != rank)
        return;
    rankinfo_t *k = &d->ranks[rank];
    k->used_cores -= t->cores;
    k->used_gpus -= t->gpus;
    k->assigned--;
    if (t->started)
        k->started--;
    if (k->assigned == k->started)
        k->revoking = 0;
    t->started = 0;
    if (start > 0 && end >= start) {
        double dur = end - start;
        k->busy_s += dur * t->cores;
        d->ewma = d->attempts_done ? 0.9 * d->ewma + 0.1 * dur : dur;
        d->lookahead = d->ewma < 0.5;
    }
    t->t_start = start;
    t->t_end = end;
    if (tail && tl) {
        free(t->tail);
        if ((t->tail = malloc(tl + 1))) {
            memcpy(t->tail, tail, tl);
            t->tail[tl] = '\0';
        }
    }
    if (how == HOW_CANCELLED && !t->cancel)
        how = HOW_INTERRUPTED;
    int st = sched_finish(&d->s, i, (int)how, code);
    d->attempts_done++;
    k->finished++;
    journal_finish(d, t, st);
    if (st == TSR_TASK_FAILED)
        failed_line(d, t);
}

void disp_events(disp_t *d, int rank, const void *p, size_t n)
{
    tcur_t c;
    tcur_init(&c, p, n);
    while (c.ok && c.p < c.end) {
        unsigned kind = tcur_u8(&c);
        if (kind == EV_STARTED) {
            uint32_t i = tcur_u32(&c);
            unsigned attempt = tcur_u16(&c);
            double start = tcur_f64(&c);
            char *where = tcur_strdup(&c);
            task_t *t = c.ok && i < d->tt.n ? &d->tt.t[i] : NULL;
            if (t && t->state == TSR_TASK_RUNNING && t->attempts == attempt && t->rank == rank && !t->started) {
                t->started = 1;
                t->t_start = start;
                t->t_end = 0;
                free(t->where);
                t->where = where;
                where = NULL;
                d->ranks[rank].started++;
                journal_start(d, t, rank);
            }
            free(where);
        } else if (kind == EV_DONE) {
            on_done(d, rank, &c);
        } else if (kind == EV_RETURNED) {
            uint32_t i = tcur_u32(&c);
            unsigned attempt = tcur_u16(&c);
            task_t *t = c.ok && i < d->tt.n ? &d->tt.t[i] : NULL;
            if (!t || t->state != TSR_TASK_RUNNING || t->attempts != attempt || t->rank != rank || t->started)
                continue;
            rankinfo_t *k = &d->ranks[rank];
            k->used_cores -= t->cores;
            k->used_gpus -= t->gpus;
            k->assigned--;
            if (k->assigned == k->started)
                k->revoking = 0;
            t->attempts--;
            t->rank = -1;
            if (t->cancel) {
                sched_set(&d->s, i, TSR_TASK_PENDING);
                sched_cancel(&d->s, i);
            } else {
                sched_requeue(&d->s, i);
            }
        } else if (kind == EV_STOPREQ) {
            int sig = (int)tcur_u32(&c);
            disp_stop(d, sig, "rank %d received signal %d (%s): stopping", rank, sig, strsignal(sig));
        } else if (kind == EV_BYE) {
            d->ranks[rank].bye = 1;
        } else {
            break;
        }
    }
}

void disp_stop(disp_t *d, int sig, const char *fmt, ...)
{
    if (d->stopping)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d->stop_reason, sizeof d->stop_reason, fmt, ap);
    va_end(ap);
    d->stopping = 1;
    d->stop_sig = sig;
    d->stop_started = tnow();
    double drain = d->o->drain_s;
    double left = tsr_runtime_walltime_left(d->rt);
    if (left >= 0 && drain > left - d->o->kill_grace_s - 5)
        drain = left - d->o->kill_grace_s - 5;
    if (drain < 0)
        drain = 0;
    int running = disp_outstanding(d);
    tsr_log(TSR_LOG_INFO, "%s; no new tasks start, %d running may finish within %.0f s", d->stop_reason, running,
            drain);
    for (int r = 0; r < d->world; r++) {
        tbuf_u8(&d->ctl[r], CTL_STOP);
        tbuf_f64(&d->ctl[r], drain);
    }
}

static void cancel_one(disp_t *d, uint32_t i)
{
    task_t *t = &d->tt.t[i];
    if (t->state == TSR_TASK_RUNNING) {
        t->cancel = 1;
        tbuf_u8(&d->ctl[t->rank], CTL_KILL);
        tbuf_u32(&d->ctl[t->rank], i);
        tbuf_u16(&d->ctl[t->rank], t->attempts);
        return;
    }
    sched_cancel(&d->s, i);
    if (d->j) {
        tbuf_t *b = journal_begin(d->j, J_CANCEL);
        tbuf_str(b, t->id);
        journal_end(d->j);
    }
}

long disp_cancel(disp_t *d, const char *id, const char *tag)
{
    long n = 0;
    if (id) {
        uint32_t i = ttable_find(&d->tt, id);
        if (i == TASK_NONE)
            return -1;
        if (!task_final(&d->tt.t[i])) {
            cancel_one(d, i);
            n++;
        }
        return n;
    }
    for (uint32_t i = 0; i < d->tt.n; i++) {
        const task_ext_t *x = d->tt.t[i].ext;
        if (task_final(&d->tt.t[i]) || !x)
            continue;
        for (uint32_t k = 0; k < x->ntags; k++)
            if (strcmp(x->tags[k], tag) == 0) {
                cancel_one(d, i);
                n++;
                break;
            }
    }
    return n;
}
