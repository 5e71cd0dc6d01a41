/* SPDX-License-Identifier: BSD-3-Clause */
/* Start-up on rank 0: the task file, then the journal's records applied in
 * order (submissions parsed again, starts, ends, cancels), so a farm run
 * again on its journal knows what is done. A task that had started and not
 * finished was lost with the farm and runs again (at-least-once). Also
 * `tessera tasks status JOURNAL`, which does the same without the lock. */
#include "tasks/farm.h"
#include "tasks/taskfile.h"
#include "tessera/error.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct rctx {
    disp_t *d;
    uint64_t records;
    int readonly; /* status report: unknown ids become placeholder tasks */
    char taskfile[4096];
} rctx_t;

static task_t *find(rctx_t *x, const char *id, size_t n, uint32_t *idx)
{
    ttable_t *tt = &x->d->tt;
    *idx = idmap_find(&tt->ids, id, n);
    if (*idx != IDMAP_NONE)
        return &tt->t[*idx];
    if (!x->readonly) {
        x->d->unknown_records++;
        return NULL;
    }
    task_t *t = ttable_add(tt, idx);
    if (!t || !(t->id = tarena_strndup(&tt->arena, id, n)) || !(t->cmd = tarena_strdup(&tt->arena, "")) ||
        idmap_add(&tt->ids, *idx, NULL) != 0) {
        if (t)
            tt->n--;
        return NULL;
    }
    return t;
}

static void set_str(char **dst, const char *s, size_t n)
{
    free(*dst);
    *dst = NULL;
    if (s && n && (*dst = malloc(n + 1))) {
        memcpy(*dst, s, n);
        (*dst)[n] = '\0';
    }
}

static int apply(void *ctx, unsigned type, tcur_t *c, uint64_t number)
{
    rctx_t *x = ctx;
    disp_t *d = x->d;
    size_t n;
    uint32_t idx;
    x->records++;
    if (type == J_RUN) {
        uint32_t run = tcur_u32(c);
        tcur_f64(c);
        tcur_u32(c);
        const char *tf = tcur_str(c, &n);
        if (c->ok && run > d->run_no)
            d->run_no = run;
        if (c->ok && tf && n < sizeof x->taskfile) {
            memcpy(x->taskfile, tf, n);
            x->taskfile[n] = '\0';
        }
    } else if (type == J_SUBMIT) {
        tcur_f64(c);
        tcur_str(c, &n);
        uint32_t len = tcur_u32(c);
        const char *text = tcur_bytes(c, len);
        if (!c->ok)
            return tsr_error_set(TSR_EDATA, "journal: record %llu (a submission) is malformed",
                                 (unsigned long long)number);
        char origin[64], prefix[32];
        snprintf(origin, sizeof origin, "submission %llu", (unsigned long long)++d->submissions);
        snprintf(prefix, sizeof prefix, "s%llu.", (unsigned long long)d->submissions);
        tparse_opts_t po = {.origin = origin, .dynamic = 1, .quiet = 1, .id_prefix = prefix};
        if (taskfile_parse(&d->tt, text, len, &po, NULL) != TSR_OK)
            tsr_log(TSR_LOG_WARN, "journal record %llu: %s: not restored", (unsigned long long)number,
                    tsr_last_error());
    } else if (type == J_START || type == J_FINISH || type == J_CANCEL) {
        const char *id = tcur_str(c, &n);
        if (!c->ok || !id)
            return tsr_error_set(TSR_EDATA, "journal: record %llu is malformed", (unsigned long long)number);
        task_t *t = find(x, id, n, &idx);
        if (!t)
            return TSR_OK;
        if (type == J_CANCEL) {
            t->state = TSR_TASK_CANCELLED;
            return TSR_OK;
        }
        unsigned attempt = tcur_u16(c);
        if (type == J_START) {
            t->rank = (int16_t)tcur_u16(c);
            t->t_start = tcur_f64(c);
            const char *w = tcur_str(c, &n);
            set_str(&t->where, w, n);
            t->attempts = (uint16_t)attempt;
            t->state = TSR_TASK_RUNNING;
            t->t_end = 0;
        } else {
            t->how = (uint8_t)tcur_u8(c);
            t->code = (int32_t)tcur_u32(c);
            unsigned st = tcur_u8(c);
            t->t_start = tcur_f64(c);
            t->t_end = tcur_f64(c);
            t->rank = (int16_t)tcur_u16(c);
            const char *tail = tcur_str(c, &n);
            set_str(&t->tail, tail, n);
            int lost = t->how == HOW_INTERRUPTED || t->how == HOW_LOST;
            t->attempts = (uint16_t)(lost && attempt ? attempt - 1 : attempt);
            t->state = (uint8_t)(st >= TSR_TASK_SUCCEEDED && st < TSR_TASK_NSTATES ? st : TSR_TASK_PENDING);
        }
        if (!c->ok)
            return tsr_error_set(TSR_EDATA, "journal: record %llu is malformed", (unsigned long long)number);
    }
    return TSR_OK;
}

/* After the records: lost attempts run again; --retry-failed. */
static uint64_t settle_lost(disp_t *d, int retry_failed, int readonly)
{
    uint64_t lost = 0;
    for (uint32_t i = 0; i < d->tt.n; i++) {
        task_t *t = &d->tt.t[i];
        if (t->state == TSR_TASK_RUNNING && !readonly) {
            t->state = TSR_TASK_PENDING;
            t->how = HOW_LOST;
            if (t->attempts)
                t->attempts--;
            lost++;
        } else if (!readonly && t->state == TSR_TASK_PENDING && t->how == HOW_INTERRUPTED) {
            lost++; /* stopped by the last run's stop: runs again */
        } else if (retry_failed &&
                   (t->state == TSR_TASK_FAILED || t->state == TSR_TASK_CANCELLED || t->state == TSR_TASK_SKIPPED)) {
            t->state = TSR_TASK_PENDING;
            t->attempts = 0;
        }
        if (!readonly && !task_final(t) && (t->cores > d->max_cores || t->gpus > d->max_gpus)) {
            /* A submission restored on a smaller allocation. */
            char msg[160];
            snprintf(msg, sizeof msg, "asks for %u cores and %u GPUs; the largest rank has %d and %d", t->cores,
                     t->gpus, d->max_cores, d->max_gpus);
            set_str(&t->tail, msg, strlen(msg));
            t->state = TSR_TASK_FAILED;
            t->how = HOW_SPAWN;
            t->code = 126;
        }
    }
    return lost;
}

static void journal_run(disp_t *d, uint64_t file_tasks)
{
    char host[256] = "?";
    gethostname(host, sizeof host - 1);
    tbuf_t *b = journal_begin(d->j, J_RUN);
    tbuf_u32(b, ++d->run_no);
    tbuf_f64(b, tunix());
    tbuf_u32(b, (uint32_t)d->world);
    tbuf_str(b, d->taskfile);
    tbuf_u64(b, file_tasks);
    tbuf_str(b, host);
    tbuf_u32(b, (uint32_t)getpid());
    journal_end(d->j);
}

int replay_load(disp_t *d)
{
    const tsr_tasks_run_opts_t *o = d->o;
    char *text = NULL;
    size_t len = 0;
    rctx_t x = {.d = d};
    double t0 = tnow();
    int rc = taskfile_read(o->taskfile, &text, &len);
    if (rc == TSR_OK) {
        tparse_opts_t po = {.origin = o->taskfile, .max_cores = d->max_cores, .max_gpus = d->max_gpus};
        rc = taskfile_parse(&d->tt, text, len, &po, NULL);
    }
    free(text);
    if (rc)
        return rc;
    if (!realpath(o->taskfile, d->taskfile))
        snprintf(d->taskfile, sizeof d->taskfile, "%s", o->taskfile);
    uint32_t file_tasks = d->tt.n;
    if (o->journal_dir && (rc = journal_open(o->journal_dir, o->fsync_ms, apply, &x, &d->j)))
        return rc;
    uint64_t lost = settle_lost(d, o->retry_failed, 0);
    if (d->j && x.taskfile[0] && strcmp(x.taskfile, d->taskfile) != 0)
        tsr_log(TSR_LOG_WARN,
                "journal %s was written for the task file %s; this run reads %s (tasks are matched "
                "by id)",
                journal_path(d->j), x.taskfile, d->taskfile);
    sched_settle(&d->s, 0);
    if (d->j) {
        const uint64_t *k = d->s.count;
        if (x.records)
            tsr_log(TSR_LOG_INFO,
                    "journal %s: run %u; %llu succeeded, %llu failed, %llu skipped, %llu cancelled "
                    "before; %llu that were running when the farm stopped run again%s (replayed in %.2f s)",
                    journal_path(d->j), d->run_no + 1, (unsigned long long)k[TSR_TASK_SUCCEEDED],
                    (unsigned long long)k[TSR_TASK_FAILED], (unsigned long long)k[TSR_TASK_SKIPPED],
                    (unsigned long long)k[TSR_TASK_CANCELLED], (unsigned long long)lost,
                    o->retry_failed ? "; failed ones run again (--retry-failed)" : "", tnow() - t0);
        if (d->unknown_records)
            tsr_log(TSR_LOG_WARN, "journal %s: %llu records name tasks that are no longer in the task file",
                    journal_path(d->j), (unsigned long long)d->unknown_records);
        journal_run(d, file_tasks);
    }
    return TSR_OK;
}

int tsr_tasks_journal_report(const char *journal_dir, const char *state, int list, FILE *out)
{
    int want = -1;
    if (state && (want = tsr_task_state_parse(state)) < 0)
        return tsr_error_set(TSR_EINVAL,
                             "--state %s: expected pending, ready, delayed, running, succeeded, failed, "
                             "skipped or cancelled",
                             state);
    tsr_tasks_run_opts_t o;
    tsr_tasks_run_opts_default(&o);
    disp_t *d = calloc(1, sizeof *d);
    if (!d)
        return tsr_error_set(TSR_ENOMEM, "out of memory");
    ttable_init(&d->tt);
    sched_init(&d->s, &d->tt);
    d->o = &o;
    rctx_t x = {.d = d, .readonly = 1};
    /* The task file named by the newest run gives the tasks never started. */
    int rc = journal_read(journal_dir, apply, &x);
    if (rc == TSR_OK && x.taskfile[0]) {
        ttable_free(&d->tt);
        ttable_init(&d->tt);
        d->submissions = 0;
        char *text;
        size_t len;
        if (taskfile_read(x.taskfile, &text, &len) == TSR_OK) {
            tparse_opts_t po = {.origin = x.taskfile, .quiet = 1};
            if (taskfile_parse(&d->tt, text, len, &po, NULL) != TSR_OK)
                fprintf(out, "note: %s\n", tsr_last_error());
            free(text);
        } else {
            fprintf(out, "note: the task file %s cannot be read: only tasks the journal names are counted\n",
                    x.taskfile);
        }
        rc = journal_read(journal_dir, apply, &x);
    }
    if (rc == TSR_OK) {
        settle_lost(d, 0, 1);
        sched_settle(&d->s, 0);
        const uint64_t *k = d->s.count;
        fprintf(out,
                "%llu tasks: %llu succeeded, %llu failed, %llu skipped, %llu cancelled, %llu started and not "
                "finished (running, or lost with the farm), %llu not started\n",
                (unsigned long long)d->tt.n, (unsigned long long)k[TSR_TASK_SUCCEEDED],
                (unsigned long long)k[TSR_TASK_FAILED], (unsigned long long)k[TSR_TASK_SKIPPED],
                (unsigned long long)k[TSR_TASK_CANCELLED], (unsigned long long)k[TSR_TASK_RUNNING],
                (unsigned long long)(k[TSR_TASK_PENDING] + k[TSR_TASK_READY] + k[TSR_TASK_DELAYED]));
        for (uint32_t i = 0; list && i < d->tt.n; i++) {
            const task_t *t = &d->tt.t[i];
            int st = t->state == TSR_TASK_READY ? TSR_TASK_PENDING : t->state;
            if (want >= 0 && st != want)
                continue;
            char exitc[32] = "-", dur[32] = "-";
            if (t->how == HOW_EXITED || t->how == HOW_SPAWN)
                snprintf(exitc, sizeof exitc, "%d", t->code);
            else if (t->how == HOW_SIGNALED)
                snprintf(exitc, sizeof exitc, "signal %d", t->code);
            else if (t->how)
                snprintf(exitc, sizeof exitc, "%s", task_how_name(t->how));
            if (t->t_end > 0 && t->t_start > 0)
                snprintf(dur, sizeof dur, "%.3f", t->t_end - t->t_start);
            fprintf(out, "%s\t%s\t%u\t%s\t%d\t%s\n", t->id, tsr_task_state_name((tsr_task_state_t)st), t->attempts,
                    exitc, t->rank, dur);
        }
    }
    sched_free(&d->s);
    ttable_free(&d->tt);
    free(d);
    return rc;
}
