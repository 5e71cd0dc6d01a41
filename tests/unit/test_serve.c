/* SPDX-License-Identifier: BSD-3-Clause */
/* Coordinator: refusals at start-up (bind without token, token readable by
 * others, bad address), the address file, predictions equal to
 * tsr_model_predict, the cache and its invalidation on publish, batching
 * under many concurrent requests, status history and metrics. Requests go
 * through the router as the HTTP glue sends them (tests/e2e/test_serve.sh
 * covers real HTTP). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "serve/internal.h"
#include "tessera/error.h"

static char dir[2048];
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;

static int setup(void **state)
{
    (void)state;
    const char *tmp = getenv("TSR_TEST_TMP");
    char base[1024];
    snprintf(base, sizeof base, "%s", tmp && tmp[0] ? tmp : "/tmp");
    mkdir(base, 0755);
    snprintf(dir, sizeof dir, "%s/serve.XXXXXX", base);
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static const char *no_arg(void *conn, const char *key, size_t *len)
{
    const char *q = conn; /* "key=value" or NULL */
    size_t n = strlen(key);
    const char *v = q && strncmp(q, key, n) == 0 && q[n] == '=' ? q + n + 1 : NULL;
    *len = v ? strlen(v) : 0;
    return v;
}

static void done(serve_job_t *j)
{
    serve_req_t *r = j->owner;
    pthread_mutex_lock(&mu);
    r->phase = PH_COMPUTED;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
}

/* One request through the router; the caller frees the result. */
static serve_req_t *call(tsr_serve_t *s, const char *method, const char *url, const char *query, const char *auth,
                         const char *body)
{
    serve_req_t *r = serve_req_new(s, (void *)query, no_arg);
    assert_non_null(r);
    r->job.done = done;
    r->ctype = "application/json";
    serve_begin(r, method, url, auth, NULL);
    if (!r->resp.status) {
        if (body)
            assert_int_equal(serve_body(r, body, strlen(body)), 0);
        serve_end(r);
    }
    if (r->queued) {
        pthread_mutex_lock(&mu);
        while (r->phase != PH_COMPUTED)
            pthread_cond_wait(&cv, &mu);
        pthread_mutex_unlock(&mu);
        serve_predict_finish(r);
    }
    serve_record(s, r); /* as the HTTP glue does when it sends the answer */
    return r;
}

static int status_of(tsr_serve_t *s, const char *method, const char *url, const char *auth, const char *body)
{
    serve_req_t *r = call(s, method, url, NULL, auth, body);
    int st = r->resp.status;
    serve_req_free(r);
    return st;
}

static tsr_model_t *model(uint64_t seed)
{
    tsr_model_spec_t spec;
    tsr_model_spec_mlp(&spec, (const size_t[]){3, 6, 4}, 2, TSR_ACT_RELU, TSR_LOSS_XENT);
    tsr_model_t *m = NULL;
    assert_int_equal(tsr_model_create(&spec, 16, &m), TSR_OK);
    tsr_model_init(m, seed);
    return m;
}

static tsr_serve_t *start(int cache_mb, int max_batch, int delay_us)
{
    tsr_serve_config_t cfg;
    tsr_serve_config_default(&cfg);
    cfg.run_dir = dir;
    cfg.registry = NULL;
    cfg.cache_mb = (size_t)cache_mb;
    cfg.max_batch = max_batch;
    cfg.max_delay_us = delay_us;
    cfg.threads = 1;
    tsr_serve_t *s = NULL;
    assert_int_equal(tsr_serve_create(&cfg, &s), TSR_OK);
    return s;
}

static void test_refusals(void **state)
{
    (void)state;
    tsr_serve_config_t cfg;
    tsr_serve_t *s = NULL;
    char tok[2200];
    tsr_serve_config_default(&cfg);
    cfg.run_dir = dir;
    cfg.bind = "0.0.0.0";
    assert_int_equal(tsr_serve_create(&cfg, &s), TSR_EINVAL);
    assert_non_null(strstr(tsr_last_error(), "token_file"));
    snprintf(tok, sizeof tok, "%s/token", dir);
    int fd = open(tok, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_int_equal(write(fd, "0123456789abcdef0123\n", 21), 21);
    close(fd);
    chmod(tok, 0644);
    cfg.token_file = tok;
    assert_int_equal(tsr_serve_create(&cfg, &s), TSR_EINVAL);
    assert_non_null(strstr(tsr_last_error(), "chmod 600"));
    chmod(tok, 0600);
    cfg.bind = "not-an-address";
    assert_int_equal(tsr_serve_create(&cfg, &s), TSR_EINVAL);
    cfg.bind = "127.0.0.1";
    cfg.max_batch = 0;
    assert_int_equal(tsr_serve_create(&cfg, &s), TSR_EINVAL);
    cfg.max_batch = 8;
    fd = open(tok, O_WRONLY | O_TRUNC);
    assert_int_equal(write(fd, "short", 5), 5);
    close(fd);
    assert_int_equal(tsr_serve_create(&cfg, &s), TSR_EINVAL);
    assert_null(s);
}

/* JSON text the parsers may see: UTF-8 by RFC 3629, no NUL; the general
 * input parser refuses the rest with 400 before jansson sees it. */
static void test_json_text(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        size_t n;
        int ok;
    } cases[] = {
        {"{\"a\":\"\xc3\xa9 \xe2\x82\xac \xf0\x9d\x84\x9e\"}", 0, 1}, /* e-acute, euro, G clef */
        {"{\"a\":\"\xc0\x80\"}", 0, 0},                               /* overlong NUL */
        {"{\"a\":\"\xc1\xbf\"}", 0, 0},                               /* overlong */
        {"{\"a\":\"\xe0\x80\xaf\"}", 0, 0},                           /* overlong '/' */
        {"{\"a\":\"\xed\xa0\x80\"}", 0, 0},                           /* a surrogate */
        {"{\"a\":\"\xf4\x90\x80\x80\"}", 0, 0},                       /* above U+10FFFF */
        {"{\"a\":\"\xf5\x80\x80\x80\"}", 0, 0},
        {"{\"a\":\"\x80\"}", 0, 0},      /* a lone continuation byte */
        {"{\"a\":1}\xe2\x82", 0, 0},     /* cut short at the end */
        {"{\"a\":1}\0{\"b\":2}", 15, 0}, /* a NUL byte */
        {"{\"a\":1}", 0, 1},
    };
    char err[128];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t n = cases[i].n ? cases[i].n : strlen(cases[i].s);
        assert_int_equal(serve_json_text(cases[i].s, n, err, sizeof err), cases[i].ok ? 0 : 400);
    }
    float xin[8], *x = xin;
    size_t rows = 0;
    assert_int_equal(serve_parse_inputs("{\"inputs\":[[1,2]]}\0", 19, 2, 4, &x, 8, &rows, err, sizeof err), 400);
    assert_non_null(strstr(err, "NUL byte at byte 18"));
    assert_int_equal(serve_parse_inputs("{\"inputs\":[[1,2]]}", 18, 2, 4, &x, 8, &rows, err, sizeof err), 0);
    assert_int_equal(rows, 1);
}

static void test_token(void **state)
{
    (void)state;
    char tok[2200], addr[2200], line[128];
    snprintf(tok, sizeof tok, "%s/token2", dir);
    int fd = open(tok, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_int_equal(write(fd, "s3cret-s3cret-s3cret\n", 21), 21);
    close(fd);
    tsr_serve_config_t cfg;
    tsr_serve_config_default(&cfg);
    cfg.run_dir = dir;
    cfg.token_file = tok;
    cfg.bind = "0.0.0.0"; /* allowed with a token */
    cfg.threads = 1;
    tsr_serve_t *s = NULL;
    assert_int_equal(tsr_serve_create(&cfg, &s), TSR_OK);
    snprintf(addr, sizeof addr, "%s/coordinator.addr", dir);
    FILE *f = fopen(addr, "r");
    assert_non_null(f);
    assert_non_null(fgets(line, sizeof line, f));
    fclose(f);
    char want[32];
    snprintf(want, sizeof want, ":%d\n", tsr_serve_port(s));
    assert_non_null(strstr(line, want));
    assert_true(tsr_serve_port(s) > 0);
    assert_int_equal(status_of(s, "GET", "/health", NULL, NULL), 200);
    assert_int_equal(status_of(s, "GET", "/status", NULL, NULL), 401);
    assert_int_equal(status_of(s, "GET", "/status", "Bearer s3cret-s3cret-s3creT", NULL), 401);
    assert_int_equal(status_of(s, "GET", "/status", "Bearer s3cret-s3cret-s3cret-", NULL), 401);
    assert_int_equal(status_of(s, "GET", "/status", "Bearer s3cret", NULL), 401);
    assert_int_equal(status_of(s, "GET", "/status", "Bearer s3cret-s3cret-s3cret", NULL), 200);
    assert_int_equal(status_of(s, "GET", "/nowhere", NULL, NULL), 401); /* no route map without the token */
    assert_int_equal(status_of(s, "GET", "/nowhere", "bearer s3cret-s3cret-s3cret", NULL), 404);
    tsr_serve_destroy(s);
    assert_int_not_equal(access(addr, F_OK), 0); /* removed on the way out */
}

/* Parses {"outputs": [[...]]} into out (rows x k). */
static void outputs(const serve_req_t *r, float *out, size_t rows, size_t k)
{
    assert_int_equal(r->resp.status, 200);
    json_t *j = json_loadb(r->resp.body, r->resp.len, 0, NULL), *o = json_object_get(j, "outputs");
    assert_int_equal(json_array_size(o), rows);
    for (size_t i = 0; i < rows; i++)
        for (size_t c = 0; c < k; c++)
            out[i * k + c] = (float)json_number_value(json_array_get(json_array_get(o, i), c));
    json_decref(j);
}

static void test_predict_cache(void **state)
{
    (void)state;
    tsr_serve_t *s = start(1, 8, 0);
    const char *body = "{\"inputs\":[[0.5,-1,2],[0,0,0]]}";
    float x[6] = {0.5f, -1, 2, 0, 0, 0}, want[8], got[8];
    assert_int_equal(status_of(s, "POST", "/predict", NULL, body), 503); /* nothing published */
    tsr_model_t *m = model(1);
    assert_int_equal(tsr_serve_publish_model(s, m), TSR_OK);
    assert_int_equal(tsr_model_predict(m, x, 2, want), TSR_OK);
    serve_req_t *r = call(s, "POST", "/predict", NULL, NULL, body);
    outputs(r, got, 2, 4);
    serve_req_free(r);
    for (int i = 0; i < 8; i++)
        assert_float_equal(got[i], want[i], 1e-6);
    tsr_cache_stats_t cs;
    tsr_cache_stats(s->cache, &cs);
    assert_int_equal(cs.entries, 2);
    r = call(s, "POST", "/predict", NULL, NULL, body);
    outputs(r, got, 2, 4);
    serve_req_free(r);
    tsr_cache_stats(s->cache, &cs);
    assert_int_equal(cs.hits, 2);
    for (int i = 0; i < 8; i++)
        assert_float_equal(got[i], want[i], 1e-6);
    /* New weights: the cache is invalidated (and emptied by the batcher)
     * and answers change. */
    tsr_model_t *m2 = model(2);
    assert_int_equal(tsr_serve_publish_model(s, m2), TSR_OK);
    for (int i = 0; i < 1000; i++) {
        tsr_cache_stats(s->cache, &cs);
        if (cs.entries == 0)
            break;
        usleep(1000);
    }
    assert_int_equal(cs.entries, 0);
    assert_int_equal(tsr_model_predict(m2, x, 2, want), TSR_OK);
    r = call(s, "POST", "/predict", NULL, NULL, body);
    outputs(r, got, 2, 4);
    serve_req_free(r);
    for (int i = 0; i < 8; i++)
        assert_float_equal(got[i], want[i], 1e-6);
    tsr_cache_stats(s->cache, &cs);
    assert_int_equal(cs.entries, 2);
    /* A different architecture is fine too. */
    tsr_model_spec_t wide;
    tsr_model_spec_mlp(&wide, (const size_t[]){2, 3}, 1, TSR_ACT_NONE, TSR_LOSS_MSE);
    tsr_model_t *m3 = NULL;
    assert_int_equal(tsr_model_create(&wide, 4, &m3), TSR_OK);
    tsr_model_init(m3, 3);
    assert_int_equal(tsr_serve_publish_model(s, m3), TSR_OK);
    assert_int_equal(status_of(s, "POST", "/predict", NULL, body), 422);
    assert_int_equal(status_of(s, "POST", "/predict", NULL, "{\"inputs\":[[1,2]]}"), 200);
    tsr_model_destroy(m);
    tsr_model_destroy(m2);
    tsr_model_destroy(m3);
    /* DELETE /cache empties it. */
    assert_int_equal(status_of(s, "DELETE", "/cache", NULL, NULL), 200);
    tsr_cache_stats(s->cache, &cs);
    assert_int_equal(cs.entries, 0);
    tsr_serve_destroy(s);
}

typedef struct {
    tsr_serve_t *s;
    int id, bad;
} worker_t;

static void *worker(void *arg)
{
    worker_t *w = arg;
    char body[128];
    for (int i = 0; i < 50; i++) {
        float a = (float)(w->id * 100 + i) / 64.0f;
        snprintf(body, sizeof body, "{\"inputs\":[[%.9g,1,-1]]}", (double)a);
        serve_req_t *r = call(w->s, "POST", "/predict", NULL, NULL, body);
        if (r->resp.status != 200 || !strstr(r->resp.body, "\"outputs\":[["))
            w->bad++;
        serve_req_free(r);
    }
    return NULL;
}

static void test_batching(void **state)
{
    (void)state;
    tsr_serve_t *s = start(0, 16, 2000); /* no cache: every request reaches the batcher */
    tsr_model_t *m = model(4);
    assert_int_equal(tsr_serve_publish_model(s, m), TSR_OK);
    enum { T = 8 };
    pthread_t th[T];
    worker_t w[T];
    for (int i = 0; i < T; i++) {
        w[i] = (worker_t){s, i, 0};
        pthread_create(&th[i], NULL, worker, &w[i]);
    }
    for (int i = 0; i < T; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(w[i].bad, 0);
    }
    uint64_t batches, rows, bk[SERVE_BATCH_BUCKETS + 1];
    size_t queued;
    serve_batcher_stats(s->batcher, &batches, &rows, &queued, bk);
    assert_int_equal(rows, T * 50);
    assert_true(batches < rows); /* requests that arrived together shared model calls */
    assert_int_equal(queued, 0);
    tsr_model_destroy(m);
    tsr_serve_destroy(s);
}

static void test_status_metrics(void **state)
{
    (void)state;
    tsr_serve_t *s = start(1, 8, 0);
    const char *placement[2] = {"node0 cores 0-3", "node0 cores 4-7"};
    double tmin[2] = {0.01, 0.02}, tmean[2] = {0.015, 0.025}, tmax[2] = {0.02, 0.03};
    for (int step = 1; step <= 5; step++) {
        tsr_serve_status_t st = {.step = step * 10,
                                 .epoch = 1,
                                 .epochs = 3,
                                 .loss = 1.0 / step,
                                 .accuracy = NAN,
                                 .test_loss = NAN,
                                 .samples_per_s = 1000,
                                 .world_size = 2,
                                 .placement = placement,
                                 .step_time_min = tmin,
                                 .step_time_mean = tmean,
                                 .step_time_max = tmax,
                                 .checkpoint = "saved step 40"};
        assert_int_equal(tsr_serve_publish_status(s, &st), TSR_OK);
    }
    serve_req_t *r = call(s, "GET", "/status", "since=20", NULL, NULL);
    assert_int_equal(r->resp.status, 200);
    json_t *j = json_loadb(r->resp.body, r->resp.len, 0, NULL);
    assert_int_equal(json_integer_value(json_object_get(j, "step")), 50);
    assert_true(json_is_null(json_object_get(j, "accuracy")));
    assert_int_equal(json_array_size(json_object_get(j, "history")), 3); /* steps 30, 40, 50 */
    json_t *rk = json_array_get(json_object_get(j, "ranks"), 1);
    assert_string_equal(json_string_value(json_object_get(rk, "placement")), "node0 cores 4-7");
    assert_float_equal(json_real_value(json_object_get(json_object_get(rk, "step_time_s"), "max")), 0.03, 1e-12);
    assert_true(json_is_null(json_object_get(json_object_get(rk, "comm_time_s"), "max")));
    json_decref(j);
    serve_req_free(r);
    r = call(s, "GET", "/metrics", NULL, NULL, NULL);
    assert_int_equal(r->resp.status, 200);
    const char *want[] = {"# TYPE tessera_http_requests_total counter",
                          "tessera_http_requests_total{route=\"status\",code=\"200\"} 1",
                          "tessera_train_steps_total 50",
                          "tessera_rank_step_seconds{rank=\"1\",stat=\"max\"} 0.03",
                          "tessera_rank_comm_seconds{rank=\"0\",stat=\"min\"} NaN",
                          "tessera_predict_latency_seconds_bucket{le=\"+Inf\"} 0",
                          "tessera_cache_max_bytes 1048576",
                          NULL};
    for (int i = 0; want[i]; i++)
        if (!strstr(r->resp.body, want[i]))
            fail_msg("/metrics lacks '%s'", want[i]);
    serve_req_free(r);
    assert_int_equal(status_of(s, "GET", "/", NULL, NULL), 200);
    assert_int_equal(status_of(s, "GET", "/models", NULL, NULL), 404); /* no registry configured */
    serve_req_t *e = call(s, "PATCH", "/health", NULL, NULL, NULL);
    assert_int_equal(e->resp.status, 405);
    assert_string_equal(e->resp.allow, "GET, HEAD");
    serve_req_free(e);
    tsr_serve_destroy(s);
}

/* Stopping the coordinator answers what still waits for the batcher. */
static void test_shutdown(void **state)
{
    (void)state;
    tsr_serve_t *s = start(0, 64, 10000000); /* a batch would wait 10 s to fill */
    tsr_model_t *m = model(5);
    assert_int_equal(tsr_serve_publish_model(s, m), TSR_OK);
    tsr_model_destroy(m);
    serve_req_t *r = serve_req_new(s, NULL, no_arg);
    r->job.done = done;
    serve_begin(r, "POST", "/predict", NULL, NULL);
    assert_int_equal(serve_body(r, "{\"inputs\":[[1,2,3]]}", 20), 0);
    serve_end(r);
    assert_true(r->queued);
    double t0 = tsr_time_now();
    tsr_serve_destroy(s);
    assert_true(tsr_time_now() - t0 < 5);
    assert_int_equal(r->phase, PH_COMPUTED);
    assert_int_equal(r->job.status, 503);
    serve_req_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_refusals),      cmocka_unit_test(test_token),    cmocka_unit_test(test_json_text),
        cmocka_unit_test(test_predict_cache), cmocka_unit_test(test_batching), cmocka_unit_test(test_status_metrics),
        cmocka_unit_test(test_shutdown),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
