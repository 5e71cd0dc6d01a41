/* SPDX-License-Identifier: BSD-3-Clause */
/* Routes, methods, the bearer token, request bodies and JSON answers. The
 * order of checks is deliberate: the token comes first (a client without it
 * learns nothing, not even which routes exist), then the route, the method,
 * the declared length and the content type, all before a body is read. */
#include "serve/internal.h"
#include "tessera/error.h"
#include "tessera/log.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

const int serve_codes[SERVE_CODES] = {200, 201, 400, 401, 404, 405, 409, 413, 415, 422, 500, 503, 204, 0};
const char *const serve_route_names[RT_COUNT] = {"dashboard", "health",      "status", "metrics", "predict",
                                                 "cache",     "models",      "model",  "export",  "tasks",
                                                 "task",      "task_cancel", "sweep",  "other"};

int serve_code_index(int status)
{
    for (int i = 0; i < SERVE_CODES - 1; i++)
        if (serve_codes[i] == status)
            return i;
    return SERVE_CODES - 1;
}

serve_req_t *serve_req_new(tsr_serve_t *s, void *conn, const char *(*arg)(void *, const char *, size_t *))
{
    serve_req_t *r = malloc(sizeof *r);
    if (!r)
        return NULL;
    /* Only the header part is cleared: the inline buffers are written before read. */
    memset(r, 0, offsetof(serve_req_t, xin));
    memset(&r->resp, 0, sizeof r->resp);
    r->s = s;
    r->conn = conn;
    r->arg = arg;
    r->t0 = tsr_time_now();
    r->body = r->bodyin;
    r->cap = sizeof r->bodyin;
    r->upload_fd = -1;
    r->resp.fd = -1;
    r->x = r->xin;
    r->y = r->yin;
    r->job.owner = r;
    return r;
}

void serve_req_free(serve_req_t *r)
{
    if (!r)
        return;
    if (r->upload_fd >= 0)
        close(r->upload_fd);
    if (r->upload_path) {
        unlink(r->upload_path); /* an upload not adopted by the registry */
        free(r->upload_path);
    }
    if (r->body != r->bodyin)
        free(r->body);
    if (r->x != r->xin)
        free(r->x);
    if (r->y != r->yin)
        free(r->y);
    if (r->resp.fd >= 0)
        close(r->resp.fd);
    free(r->resp.body);
    free(r);
}

/* Error text becomes a JSON string: keep it printable ASCII. */
void serve_error(serve_req_t *r, int status, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    for (char *p = msg; *p; p++)
        if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
            *p = '?';
    serve_json(r, status, json_pack("{s:s}", "error", msg));
}

void serve_fail(serve_req_t *r, int status, const char *what)
{
    tsr_log(TSR_LOG_WARN, "coordinator: %s%s%s: %s: %s", serve_route_names[r->route], r->id[0] ? " " : "", r->id, what,
            tsr_last_error());
    serve_error(r, status, "%s (the coordinator's log has the details)", what);
}

/* Length of the valid UTF-8 prefix of p[0..n) (RFC 3629: no overlong
 * forms, no surrogates, nothing above U+10FFFF). */
static size_t utf8_valid(const unsigned char *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned c = p[i], cp, k;
        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf)
            k = 1, cp = c & 0x1f;
        else if (c >= 0xe0 && c <= 0xef)
            k = 2, cp = c & 0x0f;
        else if (c >= 0xf0 && c <= 0xf4)
            k = 3, cp = c & 0x07;
        else
            return i;
        if (n - i <= k)
            return i;
        for (unsigned j = 1; j <= k; j++) {
            if ((p[i + j] & 0xc0) != 0x80)
                return i;
            cp = cp << 6 | (p[i + j] & 0x3f);
        }
        if ((k == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) || (k == 3 && (cp < 0x10000 || cp > 0x10ffff)))
            return i;
        i += k + 1;
    }
    return n;
}

int serve_json_text(const char *body, size_t len, char *err, size_t errlen)
{
    const char *nul = memchr(body, '\0', len);
    size_t ok = utf8_valid((const unsigned char *)body, nul ? (size_t)(nul - body) : len);
    if (ok < (nul ? (size_t)(nul - body) : len)) {
        snprintf(err, errlen, "the JSON body is not valid UTF-8 (byte %zu)", ok);
        return 400;
    }
    if (nul) {
        snprintf(err, errlen, "the JSON body has a NUL byte at byte %zu", (size_t)(nul - body));
        return 400;
    }
    return 0;
}

int serve_query(serve_req_t *r, const char *key, const char **out)
{
    size_t n = 0;
    *out = r->arg ? r->arg(r->conn, key, &n) : NULL;
    if (!*out)
        return 0;
    if (strlen(*out) != n || utf8_valid((const unsigned char *)*out, n) != n) {
        serve_error(r, 400, "query argument %s: %s", key,
                    strlen(*out) != n ? "contains a NUL byte (%00)" : "is not valid UTF-8");
        *out = NULL;
        return -1;
    }
    return 0;
}

void serve_text(serve_req_t *r, int status, const char *ctype, char *body, size_t len)
{
    free(r->resp.body);
    r->resp.body = body;
    r->resp.len = len;
    r->resp.ctype = ctype;
    r->resp.status = body ? status : 500;
    if (!body) { /* out of memory: a fixed answer needs no allocation */
        r->resp.ctype = "application/json";
        r->resp.body = NULL;
        r->resp.len = 0;
    }
}

void serve_json(serve_req_t *r, int status, json_t *obj)
{
    char *s = obj ? json_dumps(obj, JSON_COMPACT | JSON_REAL_PRECISION(10)) : NULL;
    json_decref(obj);
    serve_text(r, status, "application/json", s, s ? strlen(s) : 0);
}

static int parse_method(const char *m)
{
    if (strcmp(m, "GET") == 0)
        return M_GET;
    if (strcmp(m, "POST") == 0)
        return M_POST;
    if (strcmp(m, "HEAD") == 0)
        return M_HEAD;
    if (strcmp(m, "PATCH") == 0)
        return M_PATCH;
    if (strcmp(m, "DELETE") == 0)
        return M_DELETE;
    return M_OTHER;
}

static const struct {
    int methods;
    const char *allow;
} route_methods[RT_COUNT] = {
    [RT_DASHBOARD] = {M_GET | M_HEAD, "GET, HEAD"},
    [RT_HEALTH] = {M_GET | M_HEAD, "GET, HEAD"},
    [RT_STATUS] = {M_GET | M_HEAD, "GET, HEAD"},
    [RT_METRICS] = {M_GET | M_HEAD, "GET, HEAD"},
    [RT_PREDICT] = {M_POST, "POST"},
    [RT_CACHE] = {M_GET | M_HEAD | M_DELETE, "GET, HEAD, DELETE"},
    [RT_MODELS] = {M_GET | M_HEAD | M_POST, "GET, HEAD, POST"},
    [RT_MODEL] = {M_GET | M_HEAD | M_PATCH | M_DELETE, "GET, HEAD, PATCH, DELETE"},
    [RT_EXPORT] = {M_GET | M_HEAD, "GET, HEAD"},
    [RT_TASKS] = {M_GET | M_HEAD | M_POST, "GET, HEAD, POST"},
    [RT_TASK] = {M_GET | M_HEAD, "GET, HEAD"},
    [RT_TASK_CANCEL] = {M_POST, "POST"},
    [RT_SWEEP] = {M_GET | M_HEAD, "GET, HEAD"},
    [RT_OTHER] = {0, ""},
};

/* Returns 0, 404 (no such route) or 400 (an id that is not an id). */
int serve_route_parse(const char *url, int *route, char *id, size_t idlen)
{
    static const struct {
        const char *path;
        int route;
    } fixed[] = {{"/", RT_DASHBOARD},      {"/health", RT_HEALTH},   {"/status", RT_STATUS},
                 {"/metrics", RT_METRICS}, {"/predict", RT_PREDICT}, {"/cache", RT_CACHE},
                 {"/models", RT_MODELS},   {"/models/", RT_MODELS},  {"/sweep", RT_SWEEP}};
    *route = RT_OTHER;
    id[0] = '\0';
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        if (strcmp(url, fixed[i].path) == 0) {
            *route = fixed[i].route;
            return 0;
        }
    if (strncmp(url, "/tasks", 6) == 0)
        return serve_tasks_route_parse(url, route, id, idlen);
    if (strncmp(url, "/models/", 8) != 0)
        return 404;
    const char *seg = url + 8, *slash = strchr(seg, '/');
    size_t n = slash ? (size_t)(slash - seg) : strlen(seg);
    if (n == 0 || n >= idlen)
        return n == 0 ? 404 : 400;
    memcpy(id, seg, n);
    id[n] = '\0';
    if (!tsr_registry_id_valid(id))
        return 400; /* "..", "a/../b" and friends end here */
    if (!slash || strcmp(slash, "/") == 0)
        *route = RT_MODEL;
    else if (strcmp(slash, "/export") == 0)
        *route = RT_EXPORT;
    else
        return 404;
    return 0;
}

/* Constant time in the token's content: no early exit on the first
 * differing byte, so response times do not reveal a prefix. */
static int auth_ok(const tsr_serve_t *s, const char *h)
{
    if (!h || strncasecmp(h, "Bearer ", 7) != 0)
        return 0;
    h += 7;
    while (*h == ' ')
        h++;
    size_t n = strlen(h);
    volatile unsigned char diff = n != s->token_len;
    for (size_t i = 0; i < s->token_len; i++)
        diff |= (unsigned char)(s->token[i] ^ (i < n ? h[i] : 0));
    return diff == 0;
}

/* ctype is absent or one of the NULL-terminated types (parameters allowed). */
static int ctype_ok(const char *ctype, const char *const *types)
{
    if (!ctype)
        return 1;
    while (*ctype == ' ')
        ctype++;
    for (; *types; types++) {
        size_t n = strlen(*types);
        if (strncasecmp(ctype, *types, n) == 0 && (ctype[n] == '\0' || ctype[n] == ';' || ctype[n] == ' '))
            return 1;
    }
    return 0;
}

void serve_begin(serve_req_t *r, const char *method, const char *url, const char *auth, const char *clen)
{
    static const char *const json_types[] = {"application/json", NULL};
    static const char *const model_types[] = {"application/octet-stream", "application/x-hdf5", NULL};
    static const char *const task_types[] = {"text/plain",
                                             "application/x-ndjson",
                                             "application/jsonl",
                                             "application/json",
                                             "application/x-www-form-urlencoded",
                                             NULL};
    tsr_serve_t *s = r->s;
    r->method = parse_method(method);
    int status = serve_route_parse(url, &r->route, r->id, sizeof r->id);
    if (s->token && r->route != RT_HEALTH && !auth_ok(s, auth)) {
        r->route = RT_OTHER;
        serve_error(r, 401, auth ? "wrong bearer token" : "missing bearer token (Authorization: Bearer TOKEN)");
        return;
    }
    if (status == 404) {
        serve_error(r, 404, "no route %.200s; see GET / for the dashboard and README.md for the routes", url);
        return;
    }
    if (status) {
        serve_error(r, 400,
                    "invalid id in %.200s: ids are letters, digits and ._- (task ids also :@+=), not "
                    "starting with '.' or '-'",
                    url);
        return;
    }
    if (!(route_methods[r->route].methods & r->method)) {
        r->resp.allow = route_methods[r->route].allow;
        serve_error(r, 405, "%.16s is not allowed on %.200s; allowed: %s", method, url, r->resp.allow);
        return;
    }
    int upload = r->route == RT_MODELS && r->method == M_POST;
    r->limit = upload ? s->cfg.max_upload_mb << 20 : s->cfg.max_body_kb << 10;
    if (clen) {
        char *end;
        unsigned long long n = strtoull(clen, &end, 10);
        if (n > r->limit) {
            serve_error(r, 413, "request body of %llu bytes is larger than the limit of %zu bytes", n, r->limit);
            return;
        }
    }
    if ((r->route == RT_PREDICT || r->route == RT_MODEL) && (r->method & (M_POST | M_PATCH)) &&
        !ctype_ok(r->ctype, json_types)) {
        serve_error(r, 415, "Content-Type %.100s: expected application/json", r->ctype);
        return;
    }
    if (r->route == RT_TASKS && r->method == M_POST && !ctype_ok(r->ctype, task_types)) {
        serve_error(r, 415, "Content-Type %.100s: send task-file lines as text/plain or application/x-ndjson",
                    r->ctype);
        return;
    }
    if (r->route >= RT_MODELS && r->route <= RT_EXPORT && !s->registry) {
        serve_error(r, 404, "no model registry is configured (serve.registry)");
        return;
    }
    if (upload) {
        if (!ctype_ok(r->ctype, model_types)) {
            serve_error(r, 415, "Content-Type %.100s: upload a model file as application/octet-stream", r->ctype);
            return;
        }
        char path[4096];
        int fd = tsr_registry_tmpfile(s->registry, path, sizeof path);
        if (fd < 0 || !(r->upload_path = strdup(path))) {
            if (fd >= 0) {
                close(fd);
                unlink(path);
            }
            serve_fail(r, 500, "cannot store the upload");
            return;
        }
        r->upload_fd = fd;
    }
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int serve_body(serve_req_t *r, const char *data, size_t len)
{
    if (r->overflow || r->resp.status) {
        /* Read and drop the rest so the 413 reaches the client; a client
         * that keeps sending far past the limit is cut off. */
        r->discarded += len;
        return r->discarded > 4 * r->limit + (1u << 20) ? -1 : 0;
    }
    if (r->len + len > r->limit) {
        r->overflow = 1;
        r->discarded = r->len + len;
        return 0;
    }
    if (r->upload_fd >= 0) {
        for (size_t i = 0; r->len + i < sizeof r->magic && i < len; i++)
            r->magic[r->len + i] = (unsigned char)data[i];
        if (write_all(r->upload_fd, data, len) != 0)
            serve_error(r, 500, "writing the upload failed");
        r->len += len;
        return 0;
    }
    if (r->len + len + 1 > r->cap) {
        size_t cap = r->cap * 2 > r->len + len + 1 ? r->cap * 2 : r->len + len + 1;
        char *p = r->body == r->bodyin ? malloc(cap) : realloc(r->body, cap);
        if (!p) {
            serve_error(r, 500, "out of memory for the request body");
            return 0;
        }
        if (r->body == r->bodyin)
            memcpy(p, r->body, r->len);
        r->body = p;
        r->cap = cap;
    }
    memcpy(r->body + r->len, data, len);
    r->len += len;
    r->body[r->len] = '\0';
    return 0;
}

static void health(serve_req_t *r)
{
    static const char ok[] = "{\"status\":\"ok\"}";
    char *b = malloc(sizeof ok);
    if (b)
        memcpy(b, ok, sizeof ok);
    serve_text(r, 200, "application/json", b, sizeof ok - 1);
}

void serve_end(serve_req_t *r)
{
    if (r->resp.status)
        return;
    if (r->overflow) {
        serve_error(r, 413, "request body larger than the limit of %zu bytes", r->limit);
        return;
    }
    if (r->upload_fd < 0)
        r->body[r->len] = '\0'; /* in memory: JSON parsers may rely on the terminator */
    switch (r->route) {
    case RT_DASHBOARD: serve_route_dashboard(r); break;
    case RT_HEALTH: health(r); break;
    case RT_STATUS: serve_route_status(r); break;
    case RT_METRICS: serve_route_metrics(r); break;
    case RT_PREDICT: serve_predict(r); break;
    case RT_CACHE: serve_route_cache(r); break;
    case RT_TASKS:
    case RT_TASK:
    case RT_TASK_CANCEL: serve_route_tasks(r); break;
    case RT_SWEEP: serve_route_sweep(r); break;
    default: serve_route_models(r); break;
    }
}

void serve_record(tsr_serve_t *s, const serve_req_t *r)
{
    atomic_fetch_add_explicit(&s->http[r->route][serve_code_index(r->resp.status)], 1, memory_order_relaxed);
    if (r->route != RT_PREDICT || r->resp.status != 200)
        return;
    double dt = tsr_time_now() - r->t0;
    int b = 0;
    while (b < SERVE_LAT_BUCKETS && dt > serve_lat_bounds[b])
        b++;
    atomic_fetch_add_explicit(&s->lat_bucket[b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&s->lat_count, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&s->lat_sum_ns, (uint64_t)(dt * 1e9), memory_order_relaxed);
}
