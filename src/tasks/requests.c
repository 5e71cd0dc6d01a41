/* SPDX-License-Identifier: BSD-3-Clause */
/* The coordinator's submissions and cancels reach the dispatcher through a
 * queue: an HTTP thread queues its request, wakes the loop (eventfd) and
 * waits for the answer; the loop drains the queue between passes, so the
 * task table only ever changes on its thread. A request the loop does not
 * answer within a while gets 503; whichever side lets go last frees it. */
#include "tasks/farm.h"
#include "tasks/taskfile.h"
#include "tessera/error.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

enum { REQ_SUBMIT = 1, REQ_CANCEL, WAIT_S = 30, IDS_SHOWN = 1000 };

struct treq {
    treq_t *next;
    int kind;
    char *body;
    size_t len;
    char *id, *tag;
    int status, done, refs;
    char *answer;
    pthread_cond_t cv;
};

static void req_unref(treq_t *r)
{
    if (--r->refs)
        return;
    pthread_cond_destroy(&r->cv);
    free(r->body);
    free(r->id);
    free(r->tag);
    free(r->answer);
    free(r);
}

int requests_init(disp_t *d)
{
    d->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (d->efd < 0)
        return tsr_error_set(TSR_ESYS, "tasks: eventfd: %s", strerror(errno));
    return TSR_OK;
}

void requests_free(disp_t *d)
{
    pthread_mutex_lock(&d->qmu);
    while (d->qhead) {
        treq_t *r = d->qhead;
        d->qhead = r->next;
        r->status = 503;
        r->done = 1;
        pthread_cond_signal(&r->cv);
        req_unref(r);
    }
    d->qtail = NULL;
    pthread_mutex_unlock(&d->qmu);
    if (d->efd >= 0)
        close(d->efd);
    d->efd = -1;
}

static char *error_json(const char *fmt, const char *msg)
{
    char buf[1200];
    snprintf(buf, sizeof buf, fmt, msg);
    for (char *p = buf; *p; p++)
        if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
            *p = '?';
    json_t *o = json_pack("{s:s}", "error", buf);
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    return s;
}

static void do_submit(disp_t *d, treq_t *r)
{
    if (d->stopping || d->ended) {
        r->status = 503;
        r->answer = error_json("%s", d->ended ? "the farm has finished" : "the farm is stopping");
        return;
    }
    char origin[64], prefix[32];
    snprintf(origin, sizeof origin, "submission %llu", (unsigned long long)d->submissions + 1);
    snprintf(prefix, sizeof prefix, "s%llu.", (unsigned long long)d->submissions + 1);
    tparse_opts_t po = {.origin = origin,
                        .dynamic = 1,
                        .max_cores = d->max_cores,
                        .max_gpus = d->max_gpus,
                        .id_prefix = prefix};
    uint32_t first = d->tt.n, added = 0;
    if (taskfile_parse(&d->tt, r->body, r->len, &po, &added) != TSR_OK) {
        r->status = strstr(tsr_last_error(), "not valid JSON") ? 400 : 422;
        r->answer = error_json("%s", tsr_last_error());
        return;
    }
    d->submissions++;
    disp_journal_submit(d, "POST /tasks", r->body, r->len);
    sched_settle(&d->s, first);
    json_t *ids = json_array();
    for (uint32_t i = first; i < d->tt.n && i - first < IDS_SHOWN; i++)
        json_array_append_new(ids, json_string(d->tt.t[i].id));
    json_t *o = json_pack("{s:I,s:o,s:I}", "submitted", (json_int_t)added, "ids", ids, "total", (json_int_t)d->tt.n);
    r->answer = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    r->status = 201;
    tsr_log(TSR_LOG_INFO, "tasks: %s: %u task%s added (POST /tasks)", origin, added, added == 1 ? "" : "s");
}

static void do_cancel(disp_t *d, treq_t *r)
{
    long n = disp_cancel(d, r->id, r->tag);
    if (n < 0) {
        r->status = 404;
        r->answer = error_json("no task %s", r->id);
        return;
    }
    json_t *o = json_pack("{s:I}", "cancelled", (json_int_t)n);
    r->answer = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    r->status = 200;
    tsr_log(TSR_LOG_INFO, "tasks: cancel %s%s: %ld task%s", r->id ? "task " : "tag ", r->id ? r->id : r->tag, n,
            n == 1 ? "" : "s");
}

void requests_drain(disp_t *d)
{
    if (d->efd < 0)
        return;
    pthread_mutex_lock(&d->qmu);
    treq_t *list = d->qhead;
    d->qhead = d->qtail = NULL;
    pthread_mutex_unlock(&d->qmu);
    while (list) {
        treq_t *r = list;
        list = r->next;
        if (r->kind == REQ_SUBMIT)
            do_submit(d, r);
        else
            do_cancel(d, r);
        pthread_mutex_lock(&d->qmu);
        r->done = 1;
        pthread_cond_signal(&r->cv);
        req_unref(r);
        pthread_mutex_unlock(&d->qmu);
    }
}

/* On an HTTP thread: queue r and wait for the loop's answer. */
static char *ask(disp_t *d, treq_t *r, int *status)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&r->cv, &ca);
    pthread_condattr_destroy(&ca);
    r->refs = 2;
    pthread_mutex_lock(&d->qmu);
    if (d->efd < 0) {
        pthread_mutex_unlock(&d->qmu);
        req_unref(r);
        req_unref(r);
        *status = 503;
        return error_json("%s", "the farm is not running");
    }
    if (d->qtail)
        d->qtail->next = r;
    else
        d->qhead = r;
    d->qtail = r;
    uint64_t one = 1;
    if (write(d->efd, &one, sizeof one) < 0) {
    }
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += WAIT_S;
    while (!r->done)
        if (pthread_cond_timedwait(&r->cv, &d->qmu, &ts) == ETIMEDOUT)
            break;
    char *answer = NULL;
    if (r->done) {
        *status = r->status;
        answer = r->answer;
        r->answer = NULL;
    } else {
        *status = 503;
        answer = error_json("the farm did not answer within %s s", "30");
    }
    req_unref(r);
    pthread_mutex_unlock(&d->qmu);
    return answer;
}

static char *op_submit(void *ctx, const char *body, size_t len, int *status)
{
    treq_t *r = calloc(1, sizeof *r);
    if (!r || !(r->body = malloc(len + 1))) {
        free(r);
        *status = 500;
        return NULL;
    }
    memcpy(r->body, body, len);
    r->body[len] = '\0';
    r->len = len;
    r->kind = REQ_SUBMIT;
    return ask(ctx, r, status);
}

static char *op_cancel(void *ctx, const char *id, const char *tag, int *status)
{
    treq_t *r = calloc(1, sizeof *r);
    if (!r || (id && !(r->id = strdup(id))) || (tag && !(r->tag = strdup(tag)))) {
        if (r) {
            free(r->id);
            free(r);
        }
        *status = 500;
        return NULL;
    }
    r->kind = REQ_CANCEL;
    return ask(ctx, r, status);
}

static char *op_list(void *ctx, const char *state, const char *tag, long offset, long limit, int *status)
{
    return status_list_json(ctx, state, tag, offset, limit, status);
}

static char *op_get(void *ctx, const char *id, int *status) { return status_task_json(ctx, id, status); }

static char *op_metrics(void *ctx) { return status_metrics(ctx); }

void requests_ops(disp_t *d, tsr_serve_tasks_t *ops)
{
    ops->ctx = d;
    ops->list = op_list;
    ops->get = op_get;
    ops->submit = op_submit;
    ops->cancel = op_cancel;
    ops->metrics = op_metrics;
}
