/* SPDX-License-Identifier: BSD-3-Clause */
/* The coordinator's parts: server (life cycle, auth), http (libmicrohttpd
 * glue), router (routes, methods, bodies), predict (JSON to tensor, cache),
 * batcher (the one thread that runs the model), status, metrics, models
 * (registry routes) and dashboard. Requests are plain structs so the router
 * and parsers run without a network (the fuzz harness drives them). */
#ifndef TSR_SERVE_INTERNAL_H
#define TSR_SERVE_INTERNAL_H
#include "common/strbuf.h"
#include "tessera/cache.h"
#include "tessera/registry.h"
#include "tessera/log.h"
#include "tessera/serve.h"

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>

enum serve_route {
    RT_DASHBOARD,
    RT_HEALTH,
    RT_STATUS,
    RT_METRICS,
    RT_PREDICT,
    RT_CACHE,
    RT_MODELS,
    RT_MODEL,
    RT_EXPORT,
    RT_TASKS,
    RT_TASK,
    RT_TASK_CANCEL, /* the task farm's (tasks.c) */
    RT_SWEEP,       /* a sweep's table (sweep.c) */
    RT_OTHER,       /* unknown routes and early refusals */
    RT_COUNT
};
enum serve_method { M_GET = 1, M_HEAD = 2, M_POST = 4, M_PATCH = 8, M_DELETE = 16, M_OTHER = 32 };
enum serve_phase { PH_NEW, PH_PENDING, PH_COMPUTED };

/* Status codes the metrics count separately; the last slot (0) is "other". */
#define SERVE_CODES 14
extern const int serve_codes[SERVE_CODES];
int serve_code_index(int status);
extern const char *const serve_route_names[RT_COUNT];

/* Histogram bounds (seconds / rows) shared by the recorder and /metrics. */
#define SERVE_LAT_BUCKETS 14
#define SERVE_BATCH_BUCKETS 10
extern const double serve_lat_bounds[SERVE_LAT_BUCKETS];
extern const double serve_batch_bounds[SERVE_BATCH_BUCKETS];

typedef struct serve_resp {
    int status;        /* 0: not decided yet */
    const char *ctype; /* static string */
    char *body;        /* malloc'd, handed to the HTTP library */
    size_t len;
    int fd; /* a file body instead, when >= 0 */
    uint64_t fd_len;
    const char *allow;     /* Allow header (405) */
    char disposition[160]; /* Content-Disposition, or "" */
    char location[160];    /* Location, or "" */
} serve_resp_t;

/* A prediction waiting for the batcher. */
typedef struct serve_job {
    struct serve_job *next;
    size_t rows, width, outputs;
    const float *x;   /* rows * width */
    float *y;         /* rows * outputs, filled by the batcher */
    uint64_t version; /* of the weights that computed y */
    int status;       /* 0, or the HTTP status of a failure */
    const char *error;
    double t_queued;
    void (*on_queue)(struct serve_job *j); /* under the queue lock, before the batcher can see j */
    void (*done)(struct serve_job *j);     /* from the batcher thread, once */
    void *owner;
} serve_job_t;

enum { REQ_BODY_INLINE = 2048, REQ_X_INLINE = 256, REQ_Y_INLINE = 64 };

typedef struct serve_req {
    tsr_serve_t *s;
    void *conn; /* MHD connection, or the harness's */
    /* Query argument lookup: the decoded value and its length (which a %00
     * makes longer than strlen), or NULL. Use serve_query. */
    const char *(*arg)(void *conn, const char *key, size_t *len);
    int route, method, phase;
    int queued; /* set by the request's own thread when the batcher took it: phase may change under us then */
    char id[TSR_REGISTRY_ID_MAX];
    double t0;
    const char *ctype; /* request Content-Type (may be NULL) */
    /* Body in memory (JSON routes) or streamed to a file (uploads). */
    char *body;
    size_t len, cap, limit, discarded;
    int overflow;
    int upload_fd;
    char *upload_path;
    unsigned char magic[8]; /* first bytes of an upload */
    /* Prediction. */
    serve_job_t job;
    float *x, *y;
    float xin[REQ_X_INLINE], yin[REQ_Y_INLINE];
    serve_resp_t resp;
    char bodyin[REQ_BODY_INLINE];
} serve_req_t;

typedef struct serve_batcher serve_batcher_t;
typedef struct serve_status serve_status_t;
typedef struct serve_perf serve_perf_t;

struct tsr_serve {
    tsr_serve_config_t cfg;
    char *bind, *run_dir, *registry_dir, *addr_file;
    int addr_written; /* addr_file is ours to remove */
    char *token;
    size_t token_len;
    int port;
    void *daemon;              /* struct MHD_Daemon */
    struct serve_conns *conns; /* http.c: open connections, for the header deadline */
    int listen_fd;             /* handed back by quiescing, closed after the daemon stops */
    char http_error[256];      /* libmicrohttpd's last complaint, for start-up errors */
    tsr_cache_t *cache;
    tsr_registry_t *registry;
    serve_batcher_t *batcher;
    serve_status_t *status;
    serve_perf_t *perf; /* perf.c: the ranks' counters and resource use */
    double t_start;
    /* The published model, read without locks by request threads. */
    _Atomic uint64_t version;
    _Atomic size_t in_width, out_width;
    _Atomic uint64_t in_shape; /* the input's (c, h, w), serve_pack_shape */
    /* Counters for /metrics. */
    _Atomic uint64_t http[RT_COUNT][SERVE_CODES];
    _Atomic uint64_t lat_bucket[SERVE_LAT_BUCKETS + 1], lat_count, lat_sum_ns;
    _Atomic uint64_t pred_rows, pred_cached_rows;
    /* A task farm's routes (tasks.c), installed while it runs. */
    pthread_rwlock_t tasks_lock;
    tsr_serve_tasks_t tasks;
    /* A sweep's table as JSON (sweep.c), while one runs. */
    pthread_mutex_t sweep_lock;
    char *sweep_json;
};

/* router.c */
serve_req_t *serve_req_new(tsr_serve_t *s, void *conn, const char *(*arg)(void *, const char *, size_t *));
void serve_req_free(serve_req_t *r);
/* Headers are in: route, auth, method and declared length. May decide resp. */
void serve_begin(serve_req_t *r, const char *method, const char *url, const char *auth, const char *content_length);
/* A piece of the body. Returns 0, or -1 when the client should be cut off. */
int serve_body(serve_req_t *r, const char *data, size_t len);
/* The whole request is in: decide resp, or set phase PH_PENDING. */
void serve_end(serve_req_t *r);
int serve_route_parse(const char *url, int *route, char *id, size_t idlen);
void serve_error(serve_req_t *r, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* A failure the library described (tsr_last_error, which may name server
 * files): the client gets what alone, the coordinator's log the detail. */
void serve_fail(serve_req_t *r, int status, const char *what);
/* Query argument key into *out (NULL if absent). Returns 0, or answers 400
 * and returns -1 for a value with a NUL byte or invalid UTF-8. */
int serve_query(serve_req_t *r, const char *key, const char **out);
/* 0 if body is text a JSON parser may see whole: no NUL byte, valid
 * UTF-8; else 400 with the offset in err. */
int serve_json_text(const char *body, size_t len, char *err, size_t errlen);
void serve_json(serve_req_t *r, int status, json_t *obj);                               /* steals obj */
void serve_text(serve_req_t *r, int status, const char *ctype, char *body, size_t len); /* takes body */
/* Counts a finished response in the metrics. */
void serve_record(tsr_serve_t *s, const serve_req_t *r);

/* predict.c */
/* Parses {"inputs": [[...], ...]} with rows of width numbers into x (grown
 * from inline storage of cap floats as needed; *x may become malloc'd).
 * Returns 0, or an HTTP status with a message in err. */
int serve_parse_inputs(const char *body, size_t len, size_t width, size_t max_rows, float **x, size_t cap, size_t *rows,
                       char *err, size_t errlen);
/* The same for a model whose input has shape s: an image model (h * w > 1)
 * also takes rows as [C][H][W] nested arrays. */
int serve_parse_rows(const char *body, size_t len, tsr_shape_t s, size_t max_rows, float **x, size_t cap, size_t *rows,
                     char *err, size_t errlen);
/* A shape in one atomic word (21 bits a side; 0 if it does not fit) and
 * back (a flat row of width values for 0). */
static inline uint64_t serve_pack_shape(tsr_shape_t s)
{
    const int max = 1 << 21;
    if (s.c < 1 || s.h < 1 || s.w < 1 || s.c >= max || s.h >= max || s.w >= max)
        return 0;
    return (uint64_t)s.c << 42 | (uint64_t)s.h << 21 | (uint64_t)s.w;
}
static inline tsr_shape_t serve_unpack_shape(uint64_t v, size_t width)
{
    tsr_shape_t s = {(int)(v >> 42), (int)(v >> 21 & 0x1fffff), (int)(v & 0x1fffff)};
    if (!v || (size_t)s.c * (size_t)s.h * (size_t)s.w != width)
        return (tsr_shape_t){(int)width, 1, 1};
    return s;
}
/* The fast path alone: 1 if it parsed, 0 if the general parser must decide. */
int serve_parse_fast(const char *body, size_t len, size_t width, size_t max_rows, float **x, size_t cap, size_t *rows);
void serve_predict(serve_req_t *r);
void serve_predict_finish(serve_req_t *r);
/* "[a,b,...]" for a row of k outputs; returns bytes (needs 16*k+2). */
size_t serve_format_row(const float *y, size_t k, char *buf);

/* batcher.c */
int serve_batcher_create(tsr_serve_t *s, serve_batcher_t **out);
/* Fails queued jobs with 503 and stops the thread; later submits get 503. */
void serve_batcher_stop(serve_batcher_t *b);
void serve_batcher_destroy(serve_batcher_t *b); /* after stop, once no request can submit */
/* Queues j; returns 0, or 503 when stopping or overloaded (j untouched). */
int serve_batcher_submit(serve_batcher_t *b, serve_job_t *j);
int serve_batcher_publish(serve_batcher_t *b, const tsr_model_t *m, uint64_t version);
void serve_batcher_stats(serve_batcher_t *b, uint64_t *batches, uint64_t *rows, size_t *queued,
                         uint64_t bucket[SERVE_BATCH_BUCKETS + 1]);

/* status.c */
int serve_status_create(serve_status_t **out);
void serve_status_destroy(serve_status_t *st);
int serve_status_publish(serve_status_t *st, const tsr_serve_status_t *in);
void serve_status_source(serve_status_t *st, const char *source);
json_t *serve_status_json(tsr_serve_t *s, long long since); /* since < -1: no history */
/* Appends the training gauges to a Prometheus text buffer. */
typedef tsr_strbuf_t serve_buf_t;
#define serve_buf_printf tsr_strbuf_printf
void serve_status_metrics(serve_status_t *st, serve_buf_t *b);
/* One sample line, non-finite values spelled as Prometheus does (status.c). */
void serve_metric_value(serve_buf_t *b, const char *name, const char *labels, double v);
/* perf.c, perf_metrics.c: counters and resource use for /status and /metrics. */
int serve_perf_create(serve_perf_t **out);
void serve_perf_destroy(serve_perf_t *p);
json_t *serve_perf_json(tsr_serve_t *s);
void serve_perf_metrics(tsr_serve_t *s, serve_buf_t *b);

/* Route handlers. */
void serve_route_status(serve_req_t *r);
void serve_route_metrics(serve_req_t *r);
void serve_route_cache(serve_req_t *r);
void serve_route_models(serve_req_t *r);
void serve_route_dashboard(serve_req_t *r);

/* sweep.c: GET /sweep. */
void serve_route_sweep(serve_req_t *r);

/* tasks.c: the task farm's routes and metrics. */
void serve_route_tasks(serve_req_t *r);
/* Task ids: [A-Za-z0-9._:@+=-], 1 to 200, not starting with . or -. */
int serve_task_id_valid(const char *id);
/* /tasks, /tasks/cancel, /tasks/{id}, /tasks/{id}/cancel: as serve_route_parse. */
int serve_tasks_route_parse(const char *url, int *route, char *id, size_t idlen);
void serve_tasks_metrics(tsr_serve_t *s, serve_buf_t *b);

#endif
