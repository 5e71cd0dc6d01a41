/* SPDX-License-Identifier: BSD-3-Clause */
/* Fuzz target for the coordinator's request path: routing, the token,
 * bodies, the JSON-to-tensor parsers, registry routes, and the answers. It
 * drives a real coordinator (a small published model, a registry in a
 * temporary directory) through the same calls the HTTP glue makes, without
 * a socket.
 *
 * Input: "METHOD TARGET\nHeader: value\n...\n\nBODY" (TARGET may carry a
 * query), or anything else, which is sent as the body of POST /predict.
 * Without an Authorization header the right token is added; an empty one
 * sends none. Every answer must be one of the expected codes, and every
 * JSON answer valid JSON ({"error": ...} for 4xx); the fast and general
 * input parsers must agree whenever the fast one accepts.
 *
 * Built two ways: with clang -fsanitize=fuzzer (TESSERA_FUZZ=ON, see
 * tests/fuzz/CMakeLists.txt), and included by tests/unit/test_fuzz_corpus.c,
 * which replays tests/fuzz/corpus under ctest. */
#include "serve/internal.h"
#include "tessera/error.h"
#include "tessera/model.h"

#include <fcntl.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

enum { FZ_WIDTH = 4, FZ_OUT = 3, FZ_MAX = 1 << 18 };
static const char fz_token[] = "fuzz-token-0123456789abcdef";
static tsr_serve_t *fz_srv;
static char fz_dir[1024];
static pthread_mutex_t fz_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t fz_cv = PTHREAD_COND_INITIALIZER;

typedef struct fz_conn {
    char query[4096];
    char keys[32][64], vals[32][1024];
    size_t lens[32]; /* decoded lengths: a %00 makes them longer than strlen */
    int n;
} fz_conn_t;

static int hexval(int c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

/* Percent-decoding as libmicrohttpd does for paths and arguments; returns
 * the decoded length. */
static size_t unescape(const char *in, size_t n, char *out, size_t cap, int plus)
{
    size_t k = 0;
    for (size_t i = 0; i < n && k + 1 < cap; i++) {
        if (in[i] == '%' && i + 2 < n && hexval(in[i + 1]) >= 0 && hexval(in[i + 2]) >= 0) {
            out[k++] = (char)(hexval(in[i + 1]) * 16 + hexval(in[i + 2]));
            i += 2;
        } else {
            out[k++] = plus && in[i] == '+' ? ' ' : in[i];
        }
    }
    out[k] = '\0';
    return k;
}

static const char *fz_arg(void *conn, const char *key, size_t *len)
{
    fz_conn_t *c = conn;
    for (int i = 0; i < c->n; i++)
        if (strcmp(c->keys[i], key) == 0) {
            *len = c->lens[i];
            return c->vals[i];
        }
    return NULL;
}

static void fz_parse_query(fz_conn_t *c, const char *q)
{
    c->n = 0;
    while (*q && c->n < 32) {
        const char *amp = strchr(q, '&'), *end = amp ? amp : q + strlen(q), *eq = memchr(q, '=', (size_t)(end - q));
        const char *kend = eq ? eq : end;
        unescape(q, (size_t)(kend - q), c->keys[c->n], sizeof c->keys[0], 1);
        c->lens[c->n] =
            unescape(eq ? eq + 1 : end, eq ? (size_t)(end - eq - 1) : 0, c->vals[c->n], sizeof c->vals[0], 1);
        c->n++;
        q = amp ? amp + 1 : end;
    }
}

static void fz_done(serve_job_t *j)
{
    serve_req_t *r = j->owner;
    pthread_mutex_lock(&fz_mu);
    r->phase = PH_COMPUTED;
    pthread_cond_broadcast(&fz_cv);
    pthread_mutex_unlock(&fz_mu);
}

/* Sets up the coordinator once; returns 0 or -1. */
static int fz_init(void)
{
    if (fz_srv)
        return 0;
    const char *tmp = getenv("TSR_TEST_TMP");
    char base[512], path[1200], reg[1200], model[1200];
    snprintf(base, sizeof base, "%s", tmp && tmp[0] ? tmp : "/tmp");
    mkdir(base, 0755);
    snprintf(fz_dir, sizeof fz_dir, "%s/fuzz.XXXXXX", base);
    if (!mkdtemp(fz_dir))
        return -1;
    snprintf(path, sizeof path, "%s/token", fz_dir);
    snprintf(reg, sizeof reg, "%s/registry", fz_dir);
    snprintf(model, sizeof model, "%s/model.h5", fz_dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || write(fd, fz_token, sizeof fz_token - 1) != (ssize_t)(sizeof fz_token - 1))
        return -1;
    close(fd);
    tsr_model_spec_t spec;
    tsr_model_spec_mlp(&spec, (const size_t[]){FZ_WIDTH, 5, FZ_OUT}, 2, TSR_ACT_TANH, TSR_LOSS_XENT);
    tsr_model_t *m = NULL;
    if (tsr_model_create(&spec, 8, &m))
        return -1;
    tsr_model_init(m, 3);
    tsr_serve_config_t cfg;
    tsr_serve_config_default(&cfg);
    cfg.token_file = path;
    cfg.run_dir = fz_dir;
    cfg.registry = reg;
    cfg.max_delay_us = 0;
    cfg.max_batch = 4;
    cfg.cache_mb = 1;
    cfg.max_body_kb = 64;
    cfg.max_upload_mb = 1;
    cfg.threads = 1;
    int rc = tsr_model_save(m, model, NULL, 0);
    if (!rc)
        rc = tsr_serve_create(&cfg, &fz_srv);
    if (!rc)
        rc = tsr_serve_publish_model(fz_srv, m);
    if (!rc)
        rc = tsr_serve_register_model(fz_srv, model, "fuzz", NULL, 0);
    tsr_model_destroy(m);
    if (rc)
        fprintf(stderr, "fuzz: set-up failed: %s\n", tsr_last_error());
    return rc ? -1 : 0;
}

static void fz_cleanup(void)
{
    tsr_serve_destroy(fz_srv);
    fz_srv = NULL;
    if (fz_dir[0]) {
        char cmd[1200];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", fz_dir);
        if (system(cmd) != 0)
            fprintf(stderr, "fuzz: could not remove %s\n", fz_dir);
    }
}

/* The two input parsers must agree whenever the fast one accepts. */
static int fz_check_parsers(const char *body, size_t len)
{
    float xa[8], xb[8], *a = xa, *b = xb;
    size_t ra = 0, rb = 0;
    char err[256];
    int fast = serve_parse_fast(body, len, FZ_WIDTH, 64, &a, 8, &ra);
    int st = serve_parse_inputs(body, len, FZ_WIDTH, 64, &b, 8, &rb, err, sizeof err);
    int bad = fast && (st != 0 || ra != rb || memcmp(a, b, ra * FZ_WIDTH * sizeof(float)) != 0);
    if (st == 0)
        for (size_t i = 0; i < rb * FZ_WIDTH; i++)
            bad |= !isfinite(b[i]);
    if (a != xa)
        free(a);
    if (b != xb)
        free(b);
    if (bad)
        fprintf(stderr, "fuzz: parsers disagree (fast %d rows %zu, general status %d rows %zu)\n", fast, ra, st, rb);
    return bad ? -1 : 0;
}

static int fz_check_answer(const serve_req_t *r)
{
    static const int ok[] = {200, 201, 400, 401, 404, 405, 409, 413, 415, 422, 503};
    const serve_resp_t *p = &r->resp;
    int known = 0;
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        known |= p->status == ok[i];
    if (!known) {
        fprintf(stderr, "fuzz: unexpected status %d: %.*s\n", p->status, (int)(p->len < 300 ? p->len : 300),
                p->body ? p->body : "");
        return -1;
    }
    if (p->fd >= 0 || !p->ctype || strncmp(p->ctype, "application/json", 16) != 0)
        return 0;
    json_error_t je;
    json_t *j = p->body ? json_loadb(p->body, p->len, JSON_DECODE_ANY, &je) : NULL;
    int bad = !j || (p->status >= 400 && !json_is_string(json_object_get(j, "error")));
    if (bad)
        fprintf(stderr, "fuzz: status %d with a bad JSON answer: %.*s\n", p->status, (int)(p->len < 300 ? p->len : 300),
                p->body ? p->body : "(none)");
    json_decref(j);
    return bad ? -1 : 0;
}

/* Runs one request; *status gets the answer's code. Returns 0 or -1. */
static int fz_request(const uint8_t *data, size_t size, int *status)
{
    if (fz_init())
        return -1;
    if (size > FZ_MAX)
        size = FZ_MAX;
    char *in = malloc(size + 1), method[32] = "POST", url[2048] = "/predict", auth[512], ctype[256], clen[64];
    fz_conn_t *conn = calloc(1, sizeof *conn);
    if (!in || !conn) {
        free(in);
        free(conn);
        return -1;
    }
    memcpy(in, data, size);
    in[size] = '\0';
    snprintf(auth, sizeof auth, "Bearer %s", fz_token);
    snprintf(ctype, sizeof ctype, "application/json");
    const char *hauth = auth, *hctype = ctype, *hclen = NULL, *body = in;
    size_t blen = size;
    char *nl = memchr(in, '\n', size);
    if (size && in[0] >= 'A' && in[0] <= 'Z' && nl) {
        char target[2048] = "";
        *nl = '\0';
        if (sscanf(in, "%31s %2047s", method, target) < 1)
            snprintf(method, sizeof method, "GET");
        char *q = strchr(target, '?');
        if (q) {
            *q++ = '\0';
            snprintf(conn->query, sizeof conn->query, "%s", q);
            fz_parse_query(conn, conn->query);
        }
        unescape(target, strlen(target), url, sizeof url, 0);
        if (!url[0])
            snprintf(url, sizeof url, "/");
        char *line = nl + 1, *end = in + size;
        while (line < end) {
            char *e = memchr(line, '\n', (size_t)(end - line));
            if (!e)
                e = end;
            *e = '\0';
            if (line[0] == '\0' || (line[0] == '\r' && line[1] == '\0')) {
                line = e + 1;
                break;
            }
            char *colon = strchr(line, ':');
            if (colon) {
                *colon = '\0';
                char *v = colon + 1;
                while (*v == ' ')
                    v++;
                char *dst = NULL;
                size_t cap = 0;
                if (strcasecmp(line, "Authorization") == 0)
                    dst = auth, cap = sizeof auth, hauth = *v ? auth : NULL;
                else if (strcasecmp(line, "Content-Type") == 0)
                    dst = ctype, cap = sizeof ctype, hctype = *v ? ctype : NULL;
                else if (strcasecmp(line, "Content-Length") == 0)
                    dst = clen, cap = sizeof clen, hclen = clen;
                if (dst)
                    snprintf(dst, cap, "%s", v);
            }
            line = e + 1;
        }
        body = line < end ? line : end;
        blen = (size_t)(end - body);
    }
    int rc = 0;
    serve_req_t *r = serve_req_new(fz_srv, conn, fz_arg);
    if (!r) {
        free(in);
        free(conn);
        return -1;
    }
    r->job.done = fz_done;
    r->ctype = hctype;
    serve_begin(r, method, url, hauth, hclen);
    if (!r->resp.status) {
        size_t half = blen / 2; /* two pieces, as a socket may deliver them */
        if (serve_body(r, body, half) == 0 && serve_body(r, body + half, blen - half) == 0)
            serve_end(r);
        else if (!r->resp.status)
            serve_error(r, 413, "cut off");
    }
    if (r->queued) {
        pthread_mutex_lock(&fz_mu);
        while (r->phase != PH_COMPUTED)
            pthread_cond_wait(&fz_cv, &fz_mu);
        pthread_mutex_unlock(&fz_mu);
        serve_predict_finish(r);
    }
    serve_record(fz_srv, r);
    *status = r->resp.status;
    rc |= fz_check_answer(r);
    rc |= fz_check_parsers(body, blen);
    serve_req_free(r);
    free(conn);
    free(in);
    return rc;
}

#ifndef FUZZ_NO_ENTRY
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int status;
    if (fz_request(data, size, &status) != 0)
        abort(); /* a harness may abort; libFuzzer records the input */
    return 0;
}
#endif
