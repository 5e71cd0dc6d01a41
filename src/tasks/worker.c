/* SPDX-License-Identifier: BSD-3-Clause */
/* A rank's tasks: queued in the order the dispatcher sent them, started
 * when their cores and GPUs are free (never oversubscribed: the
 * dispatcher counts the same resources), watched through pidfds, killed
 * group-wide on timeout, cancel or stop (SIGTERM, then SIGKILL after the
 * grace). */
#include "tasks/worker.h"
#include "tasks/exec.h"
#include "tasks/proto.h"
#include "tessera/error.h"
#include "tessera/trace.h"

#include <hwloc/glibc-sched.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern char **environ;

typedef struct wtask {
    struct wtask *next;
    uint32_t idx;
    uint16_t attempt, cores, gpus;
    double timeout_s;
    char *id, *cmd, *cwd, *out, *err;
    char **env;
    uint32_t nenv;
    pid_t pid;
    int pidfd;
    double m_start, t_start, next_kill;
    double limbo_until; /* died of a stop signal the rank has not seen (yet) */
    int kill_stage, killed_for, code;
    int *core, *gpu;
} wtask_t;

struct worker {
    worker_res_t res;
    int ncores, free_cores;
    hwloc_bitmap_t *coreset;
    uint8_t *core_busy;
    int ngpus, free_gpus;
    uint8_t *gpu_busy;
    char place[256];
    wtask_t *qhead, *qtail;
    wtask_t **run;
    int nrun, caprun, nqueued;
    wtask_t *limbo; /* ended by SIGTERM/SIGUSR1/SIGINT from outside: a stop, or the task's own failure? */
    tbuf_t ev;
    char **base_env;
    int nbase;
    int stopping, exited, exit_code, stopreq_sent;
    double drain_at;
};

static void wtask_free(wtask_t *t)
{
    if (!t)
        return;
    free(t->id);
    free(t->cmd);
    free(t->cwd);
    free(t->out);
    free(t->err);
    for (uint32_t i = 0; i < t->nenv; i++)
        free(t->env[i]);
    free(t->env);
    free(t->core);
    free(t->gpu);
    if (t->pidfd >= 0)
        close(t->pidfd);
    free(t);
}

int worker_create(const worker_res_t *res, worker_t **out)
{
    worker_t *w = calloc(1, sizeof *w);
    if (!w)
        return tsr_error_set(TSR_ENOMEM, "tasks: out of memory");
    w->res = *res;
    int n = hwloc_get_nbobjs_inside_cpuset_by_type(res->topo, res->cpuset, HWLOC_OBJ_CORE);
    hwloc_obj_type_t type = HWLOC_OBJ_CORE;
    if (n <= 0) {
        type = HWLOC_OBJ_PU;
        n = hwloc_get_nbobjs_inside_cpuset_by_type(res->topo, res->cpuset, HWLOC_OBJ_PU);
    }
    if (n > 1 && res->reserve_core)
        n--;
    if (n <= 0) {
        free(w);
        return tsr_error_set(TSR_EINVAL, "tasks: rank %d has no cores to run tasks on", res->rank);
    }
    w->coreset = calloc((size_t)n, sizeof *w->coreset);
    w->core_busy = calloc((size_t)n, 1);
    w->gpu_busy = calloc((size_t)(res->ngpus + 1), 1);
    w->base_env = NULL;
    int envn = 0;
    while (environ[envn])
        envn++;
    w->base_env = calloc((size_t)envn + 1, sizeof *w->base_env);
    if (!w->coreset || !w->core_busy || !w->gpu_busy || !w->base_env) {
        worker_destroy(w);
        return tsr_error_set(TSR_ENOMEM, "tasks: out of memory");
    }
    for (int i = 0; i < envn; i++)
        if ((w->base_env[w->nbase] = strdup(environ[i])))
            w->nbase++;
    hwloc_bitmap_t all = hwloc_bitmap_alloc();
    for (int i = 0; i < n; i++) {
        hwloc_obj_t o = hwloc_get_obj_inside_cpuset_by_type(res->topo, res->cpuset, type, (unsigned)i);
        w->coreset[i] = hwloc_bitmap_alloc();
        if (o && w->coreset[i])
            hwloc_bitmap_and(w->coreset[i], o->cpuset, res->cpuset);
        if (all && w->coreset[i])
            hwloc_bitmap_or(all, all, w->coreset[i]);
    }
    w->ncores = w->free_cores = n;
    w->ngpus = w->free_gpus = res->ngpus;
    char list[200] = "?";
    if (all)
        hwloc_bitmap_list_snprintf(list, sizeof list, all);
    hwloc_bitmap_free(all);
    snprintf(w->place, sizeof w->place, "%d core%s (cpus %s), %d GPU%s", n, n == 1 ? "" : "s", list, w->ngpus,
             w->ngpus == 1 ? "" : "s");
    *out = w;
    return TSR_OK;
}

void worker_destroy(worker_t *w)
{
    if (!w)
        return;
    while (w->qhead) {
        wtask_t *t = w->qhead;
        w->qhead = t->next;
        wtask_free(t);
    }
    for (int i = 0; i < w->nrun; i++) {
        kill(-w->run[i]->pid, SIGKILL);
        wtask_free(w->run[i]);
    }
    while (w->limbo) {
        wtask_t *t = w->limbo;
        w->limbo = t->next;
        wtask_free(t);
    }
    free(w->run);
    for (int i = 0; i < w->ncores && w->coreset; i++)
        hwloc_bitmap_free(w->coreset[i]);
    free(w->coreset);
    free(w->core_busy);
    free(w->gpu_busy);
    for (int i = 0; i < w->nbase; i++)
        free(w->base_env[i]);
    free(w->base_env);
    tbuf_free(&w->ev);
    free(w);
}

int worker_ncores(const worker_t *w) { return w->ncores; }
int worker_ngpus(const worker_t *w) { return w->ngpus; }
const char *worker_place(const worker_t *w) { return w->place; }
tbuf_t *worker_events(worker_t *w) { return &w->ev; }
int worker_busy(const worker_t *w) { return w->nrun + w->nqueued + (w->limbo != NULL); }

int worker_exited(const worker_t *w, int *code)
{
    *code = w->exit_code;
    return w->exited;
}

void worker_stop_request(worker_t *w, int sig)
{
    if (w->stopreq_sent)
        return;
    w->stopreq_sent = 1;
    tbuf_u8(&w->ev, EV_STOPREQ);
    tbuf_u32(&w->ev, (uint32_t)sig);
}

static void done_event(worker_t *w, const wtask_t *t, int how, int code, const char *tail)
{
    tbuf_u8(&w->ev, EV_DONE);
    tbuf_u32(&w->ev, t->idx);
    tbuf_u16(&w->ev, t->attempt);
    tbuf_u8(&w->ev, (unsigned)how);
    tbuf_u32(&w->ev, (uint32_t)code);
    tbuf_f64(&w->ev, t->t_start);
    tbuf_f64(&w->ev, t->t_start ? tunix() : 0);
    tbuf_str(&w->ev, tail && tail[0] ? tail : NULL);
}

void worker_run(worker_t *w, const void *p, size_t n)
{
    tcur_t c;
    tcur_init(&c, p, n);
    while (c.ok && c.p < c.end) {
        wtask_t *t = calloc(1, sizeof *t);
        if (!t)
            break;
        t->pidfd = -1;
        t->idx = tcur_u32(&c);
        t->attempt = (uint16_t)tcur_u16(&c);
        t->cores = (uint16_t)tcur_u16(&c);
        t->gpus = (uint16_t)tcur_u16(&c);
        t->timeout_s = tcur_f64(&c);
        t->id = tcur_strdup(&c);
        t->cmd = tcur_strdup(&c);
        t->cwd = tcur_strdup(&c);
        t->out = tcur_strdup(&c);
        t->err = tcur_strdup(&c);
        t->nenv = tcur_u32(&c);
        if (c.ok && t->nenv < (1u << 20) && (t->env = calloc(t->nenv + 1, sizeof *t->env)))
            for (uint32_t i = 0; i < t->nenv && c.ok; i++)
                t->env[i] = tcur_strdup(&c);
        else
            t->nenv = 0;
        if (!c.ok || !t->id || !t->cmd || !t->out || !t->err) {
            wtask_free(t);
            break;
        }
        if (w->qtail)
            w->qtail->next = t;
        else
            w->qhead = t;
        w->qtail = t;
        w->nqueued++;
    }
}

/* Hands every queued task back (revoke, stop). */
static void return_queued(worker_t *w)
{
    while (w->qhead) {
        wtask_t *t = w->qhead;
        w->qhead = t->next;
        tbuf_u8(&w->ev, EV_RETURNED);
        tbuf_u32(&w->ev, t->idx);
        tbuf_u16(&w->ev, t->attempt);
        wtask_free(t);
    }
    w->qtail = NULL;
    w->nqueued = 0;
}

static void kill_task(wtask_t *t, int why, double now, double grace)
{
    if (t->kill_stage)
        return;
    t->killed_for = why;
    t->kill_stage = 1;
    t->next_kill = now + grace;
    kill(-t->pid, SIGTERM);
}

/* One control message (several may come in one MPI message). */
static void ctl_one(worker_t *w, tcur_t *cur)
{
    tcur_t c = *cur;
    unsigned kind = tcur_u8(&c);
    if (kind == CTL_KILL) {
        uint32_t idx = tcur_u32(&c);
        unsigned attempt = tcur_u16(&c);
        for (wtask_t **pp = &w->qhead, *prev = NULL; *pp; prev = *pp, pp = &(*pp)->next)
            if ((*pp)->idx == idx && (*pp)->attempt == attempt) {
                wtask_t *t = *pp;
                *pp = t->next;
                if (w->qtail == t)
                    w->qtail = prev;
                w->nqueued--;
                done_event(w, t, HOW_CANCELLED, 0, NULL);
                wtask_free(t);
                *cur = c;
                return;
            }
        for (int i = 0; i < w->nrun; i++)
            if (w->run[i]->idx == idx && w->run[i]->attempt == attempt)
                kill_task(w->run[i], HOW_CANCELLED, tnow(), w->res.kill_grace_s);
    } else if (kind == CTL_REVOKE) {
        return_queued(w);
    } else if (kind == CTL_STOP) {
        double drain = tcur_f64(&c);
        w->stopping = 1;
        w->drain_at = tnow() + (drain > 0 ? drain : 0);
        return_queued(w);
    } else if (kind == CTL_EXIT) {
        w->exited = 1;
        w->exit_code = (int)tcur_u32(&c);
    } else {
        c.ok = 0;
    }
    *cur = c;
}

void worker_ctl(worker_t *w, const void *p, size_t n)
{
    tcur_t c;
    tcur_init(&c, p, n);
    while (c.ok && c.p < c.end)
        ctl_one(w, &c);
}

static int is_set(const char *entry, const char *const *keys, int nkeys)
{
    for (int i = 0; i < nkeys; i++) {
        size_t n = strlen(keys[i]);
        if (strncmp(entry, keys[i], n) == 0 && entry[n] == '=')
            return 1;
    }
    return 0;
}

/* The task's environment: its own variables and tessera's first, then the
 * rank's minus those. Returns a malloc'd array; strings in *store. */
static char **make_env(worker_t *w, const wtask_t *t, const char *gpus, tbuf_t *store)
{
    enum { OURS = 6 };
    const char *keys[OURS + 64];
    int nkeys = 0, omp = 0;
    store->len = 0;
    for (uint32_t i = 0; i < t->nenv && nkeys < 64; i++) {
        tbuf_put(store, t->env[i], strlen(t->env[i]) + 1);
        omp |= strncmp(t->env[i], "OMP_NUM_THREADS=", 16) == 0;
    }
    char v[512];
    snprintf(v, sizeof v, "TESSERA_TASK_ID=%s", t->id);
    tbuf_put(store, v, strlen(v) + 1);
    tbuf_put(store, v, (size_t)snprintf(v, sizeof v, "TESSERA_TASK_ATTEMPT=%u", t->attempt) + 1);
    tbuf_put(store, v, (size_t)snprintf(v, sizeof v, "TESSERA_TASK_RANK=%d", w->res.rank) + 1);
    tbuf_put(store, v, (size_t)snprintf(v, sizeof v, "TESSERA_TASK_CORES=%u", t->cores) + 1);
    if (!omp)
        tbuf_put(store, v, (size_t)snprintf(v, sizeof v, "OMP_NUM_THREADS=%u", t->cores) + 1);
    int cuda = gpus[0] || w->res.hide_gpus;
    if (cuda)
        tbuf_put(store, v, (size_t)snprintf(v, sizeof v, "CUDA_VISIBLE_DEVICES=%s", gpus) + 1);
    if (store->oom)
        return NULL;
    /* Keys, to leave the rank's values of them out. */
    size_t nstr = 0;
    for (size_t off = 0; off < store->len; off += strlen((char *)store->p + off) + 1)
        nstr++;
    char **env = malloc((nstr + (size_t)w->nbase + 1) * sizeof *env);
    char keybuf[64][64];
    if (!env)
        return NULL;
    size_t k = 0;
    for (size_t off = 0; off < store->len; off += strlen((char *)store->p + off) + 1) {
        env[k++] = (char *)store->p + off;
        if (nkeys < 64) {
            const char *eq = strchr((char *)store->p + off, '=');
            size_t kl = eq ? (size_t)(eq - (char *)store->p - off) : 0;
            if (kl && kl < 64) {
                memcpy(keybuf[nkeys], store->p + off, kl);
                keybuf[nkeys][kl] = '\0';
                keys[nkeys] = keybuf[nkeys];
                nkeys++;
            }
        }
    }
    for (int i = 0; i < w->nbase; i++)
        if (!is_set(w->base_env[i], keys, nkeys))
            env[k++] = w->base_env[i];
    env[k] = NULL;
    return env;
}

static void release(worker_t *w, wtask_t *t)
{
    for (int i = 0; i < t->cores && t->core; i++)
        w->core_busy[t->core[i]] = 0;
    for (int i = 0; i < t->gpus && t->gpu; i++)
        w->gpu_busy[t->gpu[i]] = 0;
    w->free_cores += t->core ? t->cores : 0;
    w->free_gpus += t->gpu ? t->gpus : 0;
}

static int start(worker_t *w, wtask_t *t, tbuf_t *store)
{
    t->core = calloc(t->cores, sizeof *t->core);
    t->gpu = calloc(t->gpus + 1u, sizeof *t->gpu);
    if (!t->core || !t->gpu) {
        free(t->core);
        t->core = NULL;
        done_event(w, t, HOW_SPAWN, 126, "out of memory");
        return 0;
    }
    hwloc_bitmap_t set = hwloc_bitmap_alloc();
    for (int i = 0, k = 0; i < w->ncores && k < t->cores; i++)
        if (!w->core_busy[i]) {
            w->core_busy[i] = 1;
            t->core[k++] = i;
            if (set)
                hwloc_bitmap_or(set, set, w->coreset[i]);
        }
    char gpus[512] = "", where[640], cpus[200] = "?";
    size_t gl = 0;
    for (int i = 0, k = 0; i < w->ngpus && k < t->gpus; i++)
        if (!w->gpu_busy[i]) {
            w->gpu_busy[i] = 1;
            t->gpu[k++] = i;
            gl += (size_t)snprintf(gpus + gl, sizeof gpus - gl, "%s%s", k > 1 ? "," : "", w->res.gpus[i]);
        }
    w->free_cores -= t->cores;
    w->free_gpus -= t->gpus;
    cpu_set_t mask;
    CPU_ZERO(&mask);
    if (set) {
        hwloc_cpuset_to_glibc_sched_affinity(w->res.topo, set, &mask, sizeof mask);
        hwloc_bitmap_list_snprintf(cpus, sizeof cpus, set);
        hwloc_bitmap_free(set);
    }
    snprintf(where, sizeof where, "cpus %s%s%s", cpus, gpus[0] ? " gpus " : "", gpus);
    char **env = make_env(w, t, gpus, store);
    exec_req_t r = {t->cmd, t->cwd, t->out, t->err, env ? env : environ, set ? &mask : NULL};
    int code;
    char msg[600];
    t->t_start = tunix();
    t->m_start = tnow();
    t->pid = exec_spawn(&r, &t->pidfd, &code, msg, sizeof msg);
    free(env);
    if (t->pid < 0) {
        release(w, t);
        done_event(w, t, HOW_SPAWN, code, msg);
        return 0;
    }
    tsr_trace_mark(TSR_TRACE_TASK, 'b', (int64_t)t->idx); /* trace: shell tasks overlap: async spans */
    tbuf_u8(&w->ev, EV_STARTED);
    tbuf_u32(&w->ev, t->idx);
    tbuf_u16(&w->ev, t->attempt);
    tbuf_f64(&w->ev, t->t_start);
    tbuf_str(&w->ev, where);
    return 1;
}

/* A batch system's stop signal reaches the tasks too (SLURM signals every
 * process of the step), sometimes before the rank has seen its own. */
static int stop_signal(int sig) { return sig == SIGTERM || sig == SIGUSR1 || sig == SIGINT; }

static void report(worker_t *w, wtask_t *t, int how, int code)
{
    char tail[512] = "";
    if (how != HOW_EXITED || code != 0)
        exec_tail(t->err, tail, sizeof tail);
    done_event(w, t, how, code, tail);
    wtask_free(t);
}

static void finish(worker_t *w, int i, int how, int code, double now)
{
    wtask_t *t = w->run[i];
    int stopping = w->stopping || tsr_runtime_stop_signal();
    if (t->killed_for)
        how = t->killed_for;
    else if (how == HOW_SIGNALED && stop_signal(code) && stopping)
        how = HOW_INTERRUPTED;
    release(w, t);
    w->run[i] = w->run[--w->nrun];
    if (how == HOW_SIGNALED && stop_signal(code)) {
        /* Wait a moment for the rank's own signal before calling it a failure. */
        t->limbo_until = now + 1;
        t->code = code;
        t->next = w->limbo;
        w->limbo = t;
        return;
    }
    report(w, t, how, code);
}

int worker_pollfds(worker_t *w, struct pollfd *fds, int max, int *poll_fast)
{
    int n = 0;
    for (int i = 0; i < w->nrun; i++) {
        if (w->run[i]->pidfd < 0)
            *poll_fast = 1;
        else if (n < max)
            fds[n++] = (struct pollfd){.fd = w->run[i]->pidfd, .events = POLLIN};
    }
    return n;
}

double worker_step(worker_t *w, double now)
{
    double next = 0;
#define WANT(t) (next = next == 0 || (t) < next ? (t) : next)
    for (int i = w->nrun - 1; i >= 0; i--) {
        wtask_t *t = w->run[i];
        int how, code;
        if (exec_reap(t->pid, &how, &code)) {
            tsr_trace_mark(TSR_TRACE_TASK, 'e', (int64_t)t->idx);
            finish(w, i, how, code, now);
            continue;
        }
        if (w->stopping && now >= w->drain_at)
            kill_task(t, HOW_INTERRUPTED, now, w->res.kill_grace_s);
        if (!t->kill_stage && t->timeout_s > 0) {
            if (now >= t->m_start + t->timeout_s)
                kill_task(t, HOW_TIMEOUT, now, w->res.kill_grace_s);
            else
                WANT(t->m_start + t->timeout_s);
        }
        if (t->kill_stage == 1) {
            if (now >= t->next_kill) {
                kill(-t->pid, SIGKILL);
                t->kill_stage = 2;
            } else {
                WANT(t->next_kill);
            }
        }
    }
    if (w->stopping && w->nrun && now < w->drain_at)
        WANT(w->drain_at);
    for (wtask_t **pp = &w->limbo; *pp;) {
        wtask_t *t = *pp;
        int stopping = w->stopping || tsr_runtime_stop_signal();
        if (!stopping && now < t->limbo_until) {
            WANT(t->limbo_until);
            pp = &t->next;
            continue;
        }
        *pp = t->next;
        report(w, t, stopping ? HOW_INTERRUPTED : HOW_SIGNALED, t->code);
    }
    tbuf_t store = {0};
    while (!w->stopping && w->qhead && w->qhead->cores <= w->free_cores && w->qhead->gpus <= w->free_gpus) {
        wtask_t *t = w->qhead;
        if (w->nrun == w->caprun) {
            int cap = w->caprun ? 2 * w->caprun : 16;
            wtask_t **r = realloc(w->run, (size_t)cap * sizeof *r);
            if (!r)
                break;
            w->run = r;
            w->caprun = cap;
        }
        w->qhead = t->next;
        if (!w->qhead)
            w->qtail = NULL;
        w->nqueued--;
        t->next = NULL;
        if (start(w, t, &store) == 1)
            w->run[w->nrun++] = t;
        else
            wtask_free(t);
    }
    tbuf_free(&store);
    return next;
#undef WANT
}
