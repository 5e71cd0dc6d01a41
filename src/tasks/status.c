/* SPDX-License-Identifier: BSD-3-Clause */
/* What the coordinator shows of a farm: GET /tasks (counts, a filtered
 * page of tasks, the ranks), GET /tasks/{id} (one task in full, with the
 * ends of its output files) and the farm's /metrics lines. They read the
 * dispatcher's own table under its lock, which the loop drops while it
 * waits, so nothing is copied per task; files are read after unlocking. */
#include "tasks/exec.h"
#include "tasks/farm.h"
#include "common/fileutil.h"
#include "common/strbuf.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { LIMIT_DEFAULT = 100, LIMIT_MAX = 10000, TAIL = 2048 };

static char *dump(json_t *o)
{
    char *s = o ? json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(10)) : NULL;
    json_decref(o);
    return s;
}

static char *fail(int *http, int code, const char *msg)
{
    *http = code;
    return dump(json_pack("{s:s}", "error", msg));
}

static int has_tag(const task_t *t, const char *tag)
{
    for (uint32_t k = 0; t->ext && k < t->ext->ntags; k++)
        if (strcmp(t->ext->tags[k], tag) == 0)
            return 1;
    return 0;
}

static json_t *exit_json(const task_t *t)
{
    return t->how == HOW_EXITED || t->how == HOW_SPAWN ? json_integer(t->code) : json_null();
}

static json_t *tags_json(const task_t *t)
{
    json_t *a = json_array();
    for (uint32_t k = 0; t->ext && k < t->ext->ntags; k++)
        json_array_append_new(a, json_string(t->ext->tags[k]));
    return a;
}

static const char *farm_state(const disp_t *d) { return d->ended ? "done" : d->stopping ? "stopping" : "running"; }

static json_t *counts_json(const disp_t *d)
{
    json_t *c = json_object();
    for (int s = 0; s < TSR_TASK_NSTATES; s++)
        json_object_set_new(c, tsr_task_state_name((tsr_task_state_t)s), json_integer((json_int_t)d->s.count[s]));
    return c;
}

static json_t *ranks_json(const disp_t *d, double elapsed)
{
    json_t *a = json_array();
    for (int r = 0; r < d->world; r++) {
        const rankinfo_t *k = &d->ranks[r];
        double busy = elapsed > 0 && k->cores ? k->busy_s / (k->cores * elapsed) : 0;
        json_array_append_new(a, json_pack("{s:i,s:s,s:s,s:i,s:i,s:i,s:f}", "rank", r, "host", k->host, "place",
                                           k->place, "cores", k->cores, "gpus", k->gpus, "running", k->assigned,
                                           "busy_fraction", busy > 1 ? 1.0 : busy));
    }
    return a;
}

char *status_list_json(disp_t *d, const char *state, const char *tag, long offset, long limit, int *http)
{
    int want = -1;
    if (state && (want = tsr_task_state_parse(state)) < 0)
        return fail(http, 400,
                    "state: expected pending, ready, delayed, running, succeeded, failed, skipped or "
                    "cancelled");
    if (offset < 0)
        offset = 0;
    if (limit < 0)
        limit = LIMIT_DEFAULT;
    if (limit > LIMIT_MAX)
        limit = LIMIT_MAX;
    pthread_mutex_lock(&d->mu);
    double elapsed = tnow() - d->t0;
    json_t *tasks = json_array();
    long seen = 0, next = -1;
    for (uint32_t i = 0; i < d->tt.n; i++) {
        const task_t *t = &d->tt.t[i];
        if ((want >= 0 && t->state != want) || (tag && !has_tag(t, tag)))
            continue;
        if (seen++ < offset)
            continue;
        if ((long)json_array_size(tasks) == limit) {
            next = seen - 1;
            break;
        }
        json_array_append_new(tasks, json_pack("{s:s,s:s,s:i,s:o,s:i,s:i,s:o}", "id", t->id, "state",
                                               tsr_task_state_name((tsr_task_state_t)t->state), "attempts", t->attempts,
                                               "exit_code", exit_json(t), "rank", t->rank, "priority", t->prio, "tags",
                                               tags_json(t)));
    }
    json_t *o =
        json_pack("{s:s,s:I,s:o,s:o,s:I,s:I,s:o,s:o,s:f,s:I,s:f,s:s}", "state", farm_state(d), "total",
                  (json_int_t)d->tt.n, "counts", counts_json(d), "tasks", tasks, "offset", (json_int_t)offset, "limit",
                  (json_int_t)limit, "next_offset", next >= 0 ? json_integer(next) : json_null(), "ranks",
                  ranks_json(d, elapsed), "dispatch_rate", d->rate, "queue_depth", (json_int_t)sched_waiting(&d->s),
                  "elapsed_s", elapsed, "journal", d->j ? journal_path(d->j) : "");
    pthread_mutex_unlock(&d->mu);
    *http = 200;
    return dump(o);
}

static json_t *tail_json(const char *path)
{
    char buf[TAIL];
    exec_tail(path, buf, sizeof buf);
    return buf[0] ? json_string(buf) : json_null();
}

char *status_task_json(disp_t *d, const char *id, int *http)
{
    char out[4096] = "", err[4096] = "";
    pthread_mutex_lock(&d->mu);
    uint32_t i = ttable_find(&d->tt, id);
    if (i == TASK_NONE) {
        pthread_mutex_unlock(&d->mu);
        return fail(http, 404, "no such task");
    }
    const task_t *t = &d->tt.t[i];
    json_t *after = json_array();
    for (uint32_t k = 0; k < t->ndeps; k++)
        json_array_append_new(after, json_string(d->tt.t[d->tt.deps[t->dep_off + k]].id));
    json_t *o = json_pack("{s:s,s:s,s:s,s:i,s:i,s:i,s:o,s:i,s:i,s:i,s:o,s:o}", "id", t->id, "cmd", t->cmd, "state",
                          tsr_task_state_name((tsr_task_state_t)t->state), "attempts", t->attempts, "retries",
                          t->retries, "priority", t->prio, "after", after, "cores", t->cores, "gpus", t->gpus, "rank",
                          t->rank, "tags", tags_json(t), "exit_code", exit_json(t));
    json_object_set_new(o, "signal", t->how == HOW_SIGNALED ? json_integer(t->code) : json_null());
    json_object_set_new(o, "ended_by", t->how ? json_string(task_how_name(t->how)) : json_null());
    json_object_set_new(o, "host", t->rank >= 0 ? json_string(d->ranks[t->rank].host) : json_null());
    json_object_set_new(o, "where", t->where ? json_string(t->where) : json_null());
    json_object_set_new(o, "timeout_s", t->timeout_s > 0 ? json_real(t->timeout_s) : json_null());
    json_object_set_new(o, "start", t->t_start > 0 ? json_real(t->t_start) : json_null());
    json_object_set_new(o, "end", t->t_end > 0 ? json_real(t->t_end) : json_null());
    json_object_set_new(o, "duration_s",
                        t->t_end > 0 && t->t_start > 0 ? json_real(t->t_end - t->t_start) : json_null());
    json_object_set_new(o, "reason",
                        t->cause != TASK_NONE && t->state == TSR_TASK_SKIPPED
                            ? json_sprintf("dependency %s %s", d->tt.t[t->cause].id,
                                           tsr_task_state_name((tsr_task_state_t)d->tt.t[t->cause].state))
                            : json_null());
    json_object_set_new(o, "failure", t->tail && t->state != TSR_TASK_SUCCEEDED ? json_string(t->tail) : json_null());
    if (t->attempts) {
        disp_out_path(d, t, t->ext ? t->ext->out : NULL, "out", t->rank, out, sizeof out);
        disp_out_path(d, t, t->ext ? t->ext->err : NULL, "err", t->rank, err, sizeof err);
    }
    pthread_mutex_unlock(&d->mu);
    json_object_set_new(o, "stdout", out[0] ? json_string(out) : json_null());
    json_object_set_new(o, "stderr", err[0] ? json_string(err) : json_null());
    json_object_set_new(o, "stdout_tail", out[0] ? tail_json(out) : json_null());
    json_object_set_new(o, "stderr_tail", err[0] ? tail_json(err) : json_null());
    *http = 200;
    return dump(o);
}

char *status_metrics(disp_t *d)
{
    tsr_strbuf_t b = {0};
    pthread_mutex_lock(&d->mu);
    double elapsed = tnow() - d->t0;
    tsr_strbuf_printf(&b, "# HELP tessera_tasks Tasks of the farm by state.\n# TYPE tessera_tasks gauge\n");
    for (int s = 0; s < TSR_TASK_NSTATES; s++)
        tsr_strbuf_printf(&b, "tessera_tasks{state=\"%s\"} %llu\n", tsr_task_state_name((tsr_task_state_t)s),
                          (unsigned long long)d->s.count[s]);
    tsr_strbuf_printf(&b,
                      "# HELP tessera_tasks_dispatched_total Task attempts handed to ranks.\n"
                      "# TYPE tessera_tasks_dispatched_total counter\ntessera_tasks_dispatched_total %llu\n",
                      (unsigned long long)d->dispatched);
    tsr_strbuf_printf(&b,
                      "# HELP tessera_tasks_finished_attempts_total Task attempts that ended.\n"
                      "# TYPE tessera_tasks_finished_attempts_total counter\n"
                      "tessera_tasks_finished_attempts_total %llu\n",
                      (unsigned long long)d->attempts_done);
    tsr_strbuf_printf(&b,
                      "# HELP tessera_tasks_dispatch_rate Task attempts ended per second (last seconds).\n"
                      "# TYPE tessera_tasks_dispatch_rate gauge\ntessera_tasks_dispatch_rate %.6g\n",
                      d->rate);
    tsr_strbuf_printf(&b,
                      "# HELP tessera_tasks_queue_depth Tasks ready or waiting out a retry backoff.\n"
                      "# TYPE tessera_tasks_queue_depth gauge\ntessera_tasks_queue_depth %llu\n",
                      (unsigned long long)sched_waiting(&d->s));
    tsr_strbuf_printf(&b, "# HELP tessera_tasks_rank_busy_ratio Core-seconds of finished task attempts over the "
                          "rank's cores times the farm's age.\n# TYPE tessera_tasks_rank_busy_ratio gauge\n");
    for (int r = 0; r < d->world; r++) {
        const rankinfo_t *k = &d->ranks[r];
        double busy = elapsed > 0 && k->cores ? k->busy_s / (k->cores * elapsed) : 0;
        tsr_strbuf_printf(&b, "tessera_tasks_rank_busy_ratio{rank=\"%d\"} %.6g\n", r, busy > 1 ? 1.0 : busy);
    }
    if (d->j) {
        uint64_t rec, fs, by;
        journal_counters(d->j, &rec, &fs, &by);
        tsr_strbuf_printf(&b,
                          "# HELP tessera_tasks_journal_records_total Records appended to the journal.\n"
                          "# TYPE tessera_tasks_journal_records_total counter\n"
                          "tessera_tasks_journal_records_total %llu\n",
                          (unsigned long long)rec);
        tsr_strbuf_printf(&b,
                          "# HELP tessera_tasks_journal_fsyncs_total Group commits (write and fsync) of the "
                          "journal.\n# TYPE tessera_tasks_journal_fsyncs_total counter\n"
                          "tessera_tasks_journal_fsyncs_total %llu\n",
                          (unsigned long long)fs);
    }
    pthread_mutex_unlock(&d->mu);
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    return b.p;
}
