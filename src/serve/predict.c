/* SPDX-License-Identifier: BSD-3-Clause */
/* POST /predict: JSON rows to floats, the prediction cache, the answer.
 *
 * Two parsers read {"inputs": [[...], ...]}; image models also take each
 * row as [C][H][W] nested arrays. The fast one accepts only flat rows of that
 * exact shape and numbers it can convert exactly, and says "not mine" for
 * anything else; jansson then decides, and writes every error message. Both
 * turn a number into a double first and then into a float, so they agree to
 * the bit (the fuzz harness checks this). */
#include "serve/internal.h"
#include "tessera/error.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { MAX_DEPTH = 16, MAX_ROWS = 65536 };

/* Makes room for n floats in *x (inline storage of cap floats at first). */
static int reserve(float **x, size_t cap, float *inline_buf, size_t *have, size_t n)
{
    if (n <= *have)
        return 0;
    size_t want = *have * 2 > n ? *have * 2 : n;
    float *p = *x == inline_buf ? malloc(want * sizeof *p) : realloc(*x, want * sizeof *p);
    if (!p)
        return -1;
    if (*x == inline_buf)
        memcpy(p, inline_buf, cap * sizeof *p);
    *x = p;
    *have = want;
    return 0;
}

static const char *ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
        p++;
    return p;
}

static const double pow10_exact[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
                                       1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* One JSON number as a double; NULL if it is not a number this path can
 * convert exactly. A mantissa below 2^53 times or over an exact power of
 * ten is correctly rounded (Clinger's fast path); longer numbers go to
 * strtod, which rounds correctly too. */
static const char *number(const char *p, const char *end, double *out)
{
    const char *start = p;
    int neg = 0, digits = 0, exp10 = 0;
    uint64_t mant = 0;
    if (p < end && *p == '-') {
        neg = 1;
        p++;
    }
    if (p >= end || *p < '0' || *p > '9')
        return NULL;
    if (*p == '0') {
        p++;
    } else {
        while (p < end && *p >= '0' && *p <= '9') {
            if (digits < 19)
                mant = mant * 10 + (uint64_t)(*p - '0');
            else
                exp10++;
            digits++;
            p++;
        }
    }
    if (p < end && *p == '.') {
        p++;
        if (p >= end || *p < '0' || *p > '9')
            return NULL;
        while (p < end && *p >= '0' && *p <= '9') {
            if (mant == 0 && *p == '0') {
                exp10--; /* leading zeros of a fraction carry no digits */
            } else if (digits < 19) {
                mant = mant * 10 + (uint64_t)(*p - '0');
                exp10--;
                digits++;
            } else {
                digits++;
            }
            p++;
        }
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        int eneg = 0, e = 0;
        if (p < end && (*p == '+' || *p == '-'))
            eneg = *p++ == '-';
        if (p >= end || *p < '0' || *p > '9')
            return NULL;
        while (p < end && *p >= '0' && *p <= '9') {
            if (e < 100000)
                e = e * 10 + (*p - '0');
            p++;
        }
        exp10 += eneg ? -e : e;
    }
    /* jansson reads a number without '.' or exponent as a 64-bit integer
     * and refuses one that overflows; leave those to it. */
    if (digits >= 19 && !memchr(start, '.', (size_t)(p - start)) && !memchr(start, 'e', (size_t)(p - start)) &&
        !memchr(start, 'E', (size_t)(p - start)))
        return NULL;
    double v;
    if (digits <= 19 && mant <= (1ULL << 53) && exp10 >= -22 && exp10 <= 22) {
        v = (double)mant;
        v = exp10 < 0 ? v / pow10_exact[-exp10] : v * pow10_exact[exp10];
    } else {
        char tmp[64];
        size_t n = (size_t)(p - start);
        if (n >= sizeof tmp)
            return NULL;
        memcpy(tmp, start, n);
        tmp[n] = '\0';
        v = strtod(tmp, NULL);
        *out = v;
        return isfinite(v) ? p : NULL;
    }
    *out = neg ? -v : v;
    return p;
}

/* The double a JSON number stands for, as a float input: -0 becomes 0 so
 * equal inputs share one cache entry. */
static int to_float(double d, float *f)
{
    float v = (float)d;
    if (!isfinite(v))
        return -1;
    *f = v == 0.0f ? 0.0f : v;
    return 0;
}

/* *x is inline_buf (cap floats) or a buffer reserve() made of *have floats. */
static int parse_fast(const char *body, size_t len, size_t width, size_t max_rows, float **x, float *inline_buf,
                      size_t cap, size_t *have, size_t *rows)
{
    const char *p = body, *end = body + len;
    size_t n = 0, r = 0;
    static const char key[] = "\"inputs\"";
    p = ws(p, end);
    if (p >= end || *p++ != '{')
        return 0;
    p = ws(p, end);
    if ((size_t)(end - p) < sizeof key - 1 || memcmp(p, key, sizeof key - 1) != 0)
        return 0;
    p = ws(p + sizeof key - 1, end);
    if (p >= end || *p++ != ':')
        return 0;
    p = ws(p, end);
    if (p >= end || *p++ != '[')
        return 0;
    for (;;) {
        p = ws(p, end);
        if (p >= end || *p++ != '[' || r >= max_rows)
            goto fallback;
        for (size_t c = 0;; c++) {
            double d;
            p = ws(p, end);
            if (c >= width || !(p = number(p, end, &d)))
                goto fallback;
            if (reserve(x, cap, inline_buf, have, n + 1) || to_float(d, &(*x)[n]))
                goto fallback;
            n++;
            p = ws(p, end);
            if (p < end && *p == ',') {
                p++;
                continue;
            }
            if (p < end && *p == ']' && c + 1 == width) {
                p++;
                break;
            }
            goto fallback;
        }
        r++;
        p = ws(p, end);
        if (p < end && *p == ',') {
            p++;
            continue;
        }
        if (p < end && *p == ']') {
            p++;
            break;
        }
        goto fallback;
    }
    p = ws(p, end);
    if (p >= end || *p++ != '}')
        goto fallback;
    if (ws(p, end) != end)
        goto fallback;
    *rows = r;
    return 1;
fallback:
    *rows = 0;
    return 0;
}

int serve_parse_fast(const char *body, size_t len, size_t width, size_t max_rows, float **x, size_t cap, size_t *rows)
{
    size_t have = cap;
    return parse_fast(body, len, width, max_rows, x, *x, cap, &have, rows);
}

/* Deepest nesting outside strings; jansson recurses once per level. */
static int too_deep(const char *p, size_t len)
{
    int depth = 0, in_str = 0;
    for (size_t i = 0; i < len; i++) {
        char c = p[i];
        if (in_str) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_str = 0;
        } else if (c == '"') {
            in_str = 1;
        } else if (c == '[' || c == '{') {
            if (++depth > MAX_DEPTH)
                return 1;
        } else if (c == ']' || c == '}') {
            depth--;
        }
    }
    return 0;
}

/* v as a float: 0, 1 if it is not a number, 2 if it is no finite float32 (*d). */
static int json_float(json_t *v, float *dst, double *d)
{
    if (!json_is_number(v))
        return 1;
    *d = json_is_integer(v) ? (double)json_integer_value(v) : json_real_value(v);
    return to_float(*d, dst) ? 2 : 0;
}

/* A value that is not a number or not a float32, at position "what" of row i. */
static void bad_value(int why, double d, size_t i, const char *what, char *err, size_t errlen)
{
    if (why == 1)
        snprintf(err, errlen, "row %zu, %s: expected a number", i, what);
    else
        snprintf(err, errlen, "row %zu, %s: %g is not a finite float32", i, what, d);
}

/* Row i of an image model given as [C][H][W] nested arrays (channels
 * first, the order of a flat row) into dst. */
static int read_image(json_t *row, size_t i, tsr_shape_t s, float *dst, char *err, size_t errlen)
{
    size_t C = (size_t)s.c, H = (size_t)s.h, W = (size_t)s.w;
    char what[80];
    double d = 0;
    if (json_array_size(row) != C) {
        snprintf(err, errlen, "row %zu has %zu arrays; an image row is [C][H][W] = [%zu][%zu][%zu] (or %zu numbers)", i,
                 json_array_size(row), C, H, W, C * H * W);
        return -1;
    }
    for (size_t c = 0; c < C; c++) {
        json_t *plane = json_array_get(row, c);
        if (!json_is_array(plane) || json_array_size(plane) != H) {
            snprintf(err, errlen,
                     "row %zu, [%zu]: expected an array of %zu rows (an image row is [C][H][W] = "
                     "[%zu][%zu][%zu])",
                     i, c, H, C, H, W);
            return -1;
        }
        for (size_t h = 0; h < H; h++) {
            json_t *line = json_array_get(plane, h);
            if (!json_is_array(line) || json_array_size(line) != W) {
                snprintf(err, errlen,
                         "row %zu, [%zu][%zu]: expected an array of %zu numbers (an image row is "
                         "[C][H][W] = [%zu][%zu][%zu])",
                         i, c, h, W, C, H, W);
                return -1;
            }
            for (size_t w = 0; w < W; w++) {
                int why = json_float(json_array_get(line, w), &dst[(c * H + h) * W + w], &d);
                if (why) {
                    snprintf(what, sizeof what, "[%zu][%zu][%zu]", c, h, w);
                    bad_value(why, d, i, what, err, errlen);
                    return -1;
                }
            }
        }
    }
    return 0;
}

/* Row i: width numbers, or for an image model [C][H][W] nested arrays. */
static int read_row(json_t *row, size_t i, tsr_shape_t s, float *dst, char *err, size_t errlen)
{
    size_t width = (size_t)s.c * (size_t)s.h * (size_t)s.w;
    int image = s.h * s.w > 1;
    char what[48];
    double d = 0;
    if (!json_is_array(row)) {
        if (image)
            snprintf(err, errlen, "row %zu: expected an array of %zu numbers or a [C][H][W] = [%d][%d][%d] array", i,
                     width, s.c, s.h, s.w);
        else
            snprintf(err, errlen, "row %zu: expected an array of %zu numbers", i, width);
        return -1;
    }
    if (image && json_is_array(json_array_get(row, 0)))
        return read_image(row, i, s, dst, err, errlen);
    if (json_array_size(row) != width) {
        snprintf(err, errlen, "row %zu has %zu values; the model takes %zu inputs", i, json_array_size(row), width);
        if (image)
            snprintf(err + strlen(err), errlen - strlen(err), " (or a [C][H][W] = [%d][%d][%d] array)", s.c, s.h, s.w);
        return -1;
    }
    for (size_t j = 0; j < width; j++) {
        int why = json_float(json_array_get(row, j), &dst[j], &d);
        if (why) {
            snprintf(what, sizeof what, "column %zu", j);
            bad_value(why, d, i, what, err, errlen);
            return -1;
        }
    }
    return 0;
}

int serve_parse_inputs(const char *body, size_t len, size_t width, size_t max_rows, float **x, size_t cap, size_t *rows,
                       char *err, size_t errlen)
{
    return serve_parse_rows(body, len, (tsr_shape_t){(int)width, 1, 1}, max_rows, x, cap, rows, err, errlen);
}

int serve_parse_rows(const char *body, size_t len, tsr_shape_t shape, size_t max_rows, float **x, size_t cap,
                     size_t *rows, char *err, size_t errlen)
{
    size_t width = (size_t)shape.c * (size_t)shape.h * (size_t)shape.w;
    float *inline_buf = *x; /* the fast path may swap in a malloc'd buffer before it gives up */
    size_t have = cap;
    if (parse_fast(body, len, width, max_rows, x, inline_buf, cap, &have, rows))
        return 0;
    if (serve_json_text(body, len, err, errlen))
        return 400;
    if (too_deep(body, len)) {
        snprintf(err, errlen, "JSON nested deeper than %d levels", MAX_DEPTH);
        return 400;
    }
    json_error_t je;
    json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        snprintf(err, errlen, "malformed JSON: %s (line %d, column %d)", je.text, je.line, je.column);
        return 400;
    }
    int status = 422;
    json_t *in = json_object_get(root, "inputs");
    size_t n = json_array_size(in);
    if (!json_is_object(root) || !json_is_array(in)) {
        snprintf(err, errlen, "expected a JSON object {\"inputs\": [[x1, ..., x%zu], ...]}", width);
        goto out;
    }
    if (n == 0 || n > max_rows) {
        snprintf(err, errlen, "\"inputs\" has %zu rows; expected 1 to %zu", n, max_rows);
        status = n ? 413 : 422;
        goto out;
    }
    if (reserve(x, cap, inline_buf, &have, n * width)) {
        snprintf(err, errlen, "out of memory for %zu rows", n);
        status = 500;
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        if (read_row(json_array_get(in, i), i, shape, *x + i * width, err, errlen))
            goto out;
    *rows = n;
    status = 0;
out:
    json_decref(root);
    return status;
}

size_t serve_format_row(const float *y, size_t k, char *buf)
{
    size_t n = 0;
    buf[n++] = '[';
    for (size_t i = 0; i < k; i++) {
        if (i)
            buf[n++] = ',';
        if (isfinite(y[i]))
            n += (size_t)snprintf(buf + n, 16, "%.9g", (double)y[i]); /* 9 digits: a float round-trips */
        else
            memcpy(buf + n, "null", 4), n += 4;
    }
    buf[n++] = ']';
    return n;
}

enum { KEY_INLINE = 4096 };

/* Cache key of a row: the weights' version, then the row's float bytes. */
static unsigned char *row_key(unsigned char *buf, uint64_t version, const float *row, size_t width, size_t *klen)
{
    *klen = sizeof version + width * sizeof(float);
    unsigned char *k = *klen <= KEY_INLINE ? buf : malloc(*klen);
    if (k) {
        memcpy(k, &version, sizeof version);
        memcpy(k + sizeof version, row, width * sizeof(float));
    }
    return k;
}

static const char head[] = "{\"outputs\":[";

/* Answers from the cache alone when every row is there. */
static int from_cache(serve_req_t *r, uint64_t version, size_t rows, size_t width, size_t outs)
{
    tsr_serve_t *s = r->s;
    unsigned char kbuf[KEY_INLINE];
    size_t cap = sizeof head + rows * (outs * 16 + 3) + 2, n = sizeof head - 1;
    char *out = malloc(cap);
    if (!out)
        return 0;
    memcpy(out, head, n);
    for (size_t i = 0; i < rows; i++) {
        size_t klen, vlen = 0;
        unsigned char *k = row_key(kbuf, version, r->x + i * width, width, &klen);
        int hit = k && tsr_cache_get(s->cache, k, klen, out + n + (i > 0), cap - n - 3, &vlen);
        if (k != kbuf)
            free(k);
        if (!hit || vlen > cap - n - 3) {
            free(out);
            return 0;
        }
        if (i > 0)
            out[n] = ',';
        n += vlen + (i > 0);
    }
    out[n++] = ']';
    out[n++] = '}';
    serve_text(r, 200, "application/json", out, n);
    atomic_fetch_add_explicit(&s->pred_rows, rows, memory_order_relaxed);
    tsr_counter_add(TSR_COUNTER_PREDICTIONS, (int64_t)rows);
    atomic_fetch_add_explicit(&s->pred_cached_rows, rows, memory_order_relaxed);
    return 1;
}

void serve_predict(serve_req_t *r)
{
    tsr_serve_t *s = r->s;
    uint64_t version = atomic_load(&s->version);
    size_t width = atomic_load(&s->in_width), outs = atomic_load(&s->out_width), rows = 0;
    tsr_shape_t shape = serve_unpack_shape(atomic_load(&s->in_shape), width);
    char err[512];
    if (!version) {
        serve_error(r, 503, "no model has been published yet");
        return;
    }
    int st = serve_parse_rows(r->body, r->len, shape, MAX_ROWS, &r->x, REQ_X_INLINE, &rows, err, sizeof err);
    if (st) {
        serve_error(r, st, "%s", err);
        return;
    }
    if (s->cache && from_cache(r, version, rows, width, outs))
        return;
    if (rows * outs > REQ_Y_INLINE && !(r->y = malloc(rows * outs * sizeof(float)))) {
        r->y = r->yin;
        serve_error(r, 500, "out of memory for %zu outputs", rows * outs);
        return;
    }
    serve_job_t *j = &r->job;
    j->rows = rows;
    j->width = width;
    j->outputs = outs;
    j->x = r->x;
    j->y = r->y;
    j->t_queued = tsr_time_now();
    r->phase = PH_PENDING;
    if (serve_batcher_submit(s->batcher, j)) {
        r->phase = PH_NEW;
        serve_error(r, 503, "the prediction queue is full or shutting down; retry");
        return;
    }
    r->queued = 1; /* from here on the batcher may complete j at any moment */
}

void serve_predict_finish(serve_req_t *r)
{
    tsr_serve_t *s = r->s;
    serve_job_t *j = &r->job;
    r->phase = PH_NEW;
    if (j->status) {
        serve_error(r, j->status, "%s", j->error ? j->error : "prediction failed");
        return;
    }
    size_t cap = sizeof head + j->rows * (j->outputs * 16 + 3) + 2, n = sizeof head - 1;
    char *out = malloc(cap);
    if (!out) {
        serve_error(r, 500, "out of memory for the answer");
        return;
    }
    memcpy(out, head, n);
    unsigned char kbuf[KEY_INLINE];
    for (size_t i = 0; i < j->rows; i++) {
        if (i)
            out[n++] = ',';
        size_t len = serve_format_row(j->y + i * j->outputs, j->outputs, out + n), klen;
        if (s->cache) {
            unsigned char *k = row_key(kbuf, j->version, j->x + i * j->width, j->width, &klen);
            if (k)
                tsr_cache_put(s->cache, k, klen, out + n, len);
            if (k != kbuf)
                free(k);
        }
        n += len;
    }
    out[n++] = ']';
    out[n++] = '}';
    atomic_fetch_add_explicit(&s->pred_rows, j->rows, memory_order_relaxed);
    tsr_counter_add(TSR_COUNTER_PREDICTIONS, (int64_t)j->rows);
    serve_text(r, 200, "application/json", out, n);
}
