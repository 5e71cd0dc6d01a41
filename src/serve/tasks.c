/* SPDX-License-Identifier: BSD-3-Clause */
/* The task farm's routes. The coordinator holds no task data: a running
 * farm installs functions (tsr_serve_set_tasks) that read its own table
 * and queue submissions and cancels for its dispatcher; a read-write lock
 * lets the farm take them away while no call is in progress. */
#include "serve/internal.h"
#include "tessera/error.h"

#include <stdlib.h>
#include <string.h>

int serve_task_id_valid(const char *id)
{
    size_t n = strlen(id);
    if (n == 0 || n > 95 || id[0] == '.' || id[0] == '-')
        return 0;
    for (const char *c = id; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
              strchr("._-:@+=", *c)))
            return 0;
    return 1;
}

int serve_tasks_route_parse(const char *url, int *route, char *id, size_t idlen)
{
    id[0] = '\0';
    if (strcmp(url, "/tasks") == 0 || strcmp(url, "/tasks/") == 0) {
        *route = RT_TASKS;
        return 0;
    }
    if (strcmp(url, "/tasks/cancel") == 0) {
        *route = RT_TASK_CANCEL;
        return 0;
    }
    if (strncmp(url, "/tasks/", 7) != 0)
        return 404;
    const char *seg = url + 7, *slash = strchr(seg, '/');
    size_t n = slash ? (size_t)(slash - seg) : strlen(seg);
    if (n == 0 || n >= idlen)
        return n == 0 ? 404 : 400;
    memcpy(id, seg, n);
    id[n] = '\0';
    if (!serve_task_id_valid(id))
        return 400;
    if (!slash || strcmp(slash, "/") == 0)
        *route = RT_TASK;
    else if (strcmp(slash, "/cancel") == 0)
        *route = RT_TASK_CANCEL;
    else
        return 404;
    return 0;
}

int tsr_serve_set_tasks(tsr_serve_t *s, const tsr_serve_tasks_t *ops)
{
    pthread_rwlock_wrlock(&s->tasks_lock);
    if (ops)
        s->tasks = *ops;
    else
        memset(&s->tasks, 0, sizeof s->tasks);
    pthread_rwlock_unlock(&s->tasks_lock);
    return TSR_OK;
}

/* A query number: absent gives def; -1 marks garbage. */
static long number(serve_req_t *r, const char *key, long def)
{
    const char *v;
    if (serve_query(r, key, &v) < 0)
        return -1;
    if (!v)
        return def;
    char *end;
    long n = strtol(v, &end, 10);
    return end == v || *end || n < 0 ? -1 : n;
}

void serve_route_tasks(serve_req_t *r)
{
    tsr_serve_t *s = r->s;
    const char *state, *tag;
    /* serve_query answered 400 itself (a NUL or bad UTF-8 in the argument). */
    if (serve_query(r, "state", &state) < 0 || serve_query(r, "tag", &tag) < 0)
        return;
    char *body = NULL;
    int status = 500;
    pthread_rwlock_rdlock(&s->tasks_lock);
    const tsr_serve_tasks_t *t = &s->tasks;
    if (!t->list) {
        pthread_rwlock_unlock(&s->tasks_lock);
        serve_error(r, 404, "no task farm runs here (tessera tasks run ... --serve)");
        return;
    }
    if (r->route == RT_TASKS && r->method == M_POST) {
        if (r->len == 0) {
            pthread_rwlock_unlock(&s->tasks_lock);
            serve_error(r, 400, "empty body: send task-file lines (one command, or one JSON object, per line)");
            return;
        }
        body = t->submit(t->ctx, r->body, r->len, &status);
    } else if (r->route == RT_TASKS) {
        long offset = number(r, "offset", 0), limit = number(r, "limit", 100);
        if (offset < 0 || limit < 0) {
            pthread_rwlock_unlock(&s->tasks_lock);
            serve_error(r, 400, "offset and limit must be whole numbers >= 0");
            return;
        }
        body = t->list(t->ctx, state, tag, offset, limit, &status);
    } else if (r->route == RT_TASK) {
        body = t->get(t->ctx, r->id, &status);
    } else if (r->id[0]) {
        body = t->cancel(t->ctx, r->id, NULL, &status);
    } else if (tag && tag[0]) {
        body = t->cancel(t->ctx, NULL, tag, &status);
    } else {
        pthread_rwlock_unlock(&s->tasks_lock);
        serve_error(r, 400, "POST /tasks/cancel needs ?tag=TAG (or POST /tasks/{id}/cancel)");
        return;
    }
    pthread_rwlock_unlock(&s->tasks_lock);
    if (!body) {
        serve_error(r, 500, "out of memory");
        return;
    }
    serve_text(r, status, "application/json", body, strlen(body));
}

void serve_tasks_metrics(tsr_serve_t *s, serve_buf_t *b)
{
    pthread_rwlock_rdlock(&s->tasks_lock);
    char *m = s->tasks.metrics ? s->tasks.metrics(s->tasks.ctx) : NULL;
    pthread_rwlock_unlock(&s->tasks_lock);
    if (m)
        serve_buf_printf(b, "%s", m);
    free(m);
}
