/* SPDX-License-Identifier: BSD-3-Clause */
/* Brace expansion of plain task lines and the dimensions of "each". */
#include "tasks/expand.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int parse_ll(const char *s, size_t n, long long *v, int *width)
{
    char tmp[32];
    if (n == 0 || n >= sizeof tmp)
        return -1;
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    size_t i = tmp[0] == '-' || tmp[0] == '+';
    if (!tmp[i])
        return -1;
    for (size_t j = i; tmp[j]; j++)
        if (tmp[j] < '0' || tmp[j] > '9')
            return -1;
    char *end;
    errno = 0;
    *v = strtoll(tmp, &end, 10);
    if (errno || *end)
        return -1;
    /* bash pads to the widest endpoint when either starts with a zero */
    if (width && tmp[i] == '0' && tmp[i + 1])
        *width = (int)n;
    return 0;
}

int edim_range(edim_t *d, const char *s, size_t n, char *err, size_t errlen)
{
    const char *p1 = NULL, *p2 = NULL;
    for (size_t i = 0; i + 1 < n; i++)
        if (s[i] == '.' && s[i + 1] == '.') {
            if (!p1)
                p1 = s + i;
            else if (!p2)
                p2 = s + i;
            else
                goto bad;
            i++;
        }
    if (!p1)
        goto bad;
    long long a, b, st = 1;
    int wa = 0, wb = 0;
    const char *bend = p2 ? p2 : s + n;
    if (parse_ll(s, (size_t)(p1 - s), &a, &wa) || parse_ll(p1 + 2, (size_t)(bend - p1 - 2), &b, &wb))
        goto bad;
    if (p2 && (parse_ll(p2 + 2, (size_t)(s + n - p2 - 2), &st, NULL) || st == 0))
        goto bad;
    if (st < 0)
        st = -st;
    memset(d, 0, sizeof *d);
    d->a = a;
    d->step = a <= b ? st : -st;
    /* (b - a) / step + 1, without overflow for the ranges anyone writes */
    unsigned long long span = a <= b ? (unsigned long long)(b - a) : (unsigned long long)(a - b);
    d->n = span / (unsigned long long)st + 1;
    d->width = wa > wb ? wa : wb;
    return 0;
bad:
    snprintf(err, errlen, "'%.*s' is not a range (expected FROM..TO or FROM..TO..STEP with integers)",
             (int)(n > 60 ? 60 : n), s);
    return -1;
}

const char *edim_value(const edim_t *d, uint64_t k, char *buf, size_t *len)
{
    if (d->items) {
        *len = d->lens[k];
        return d->items[k];
    }
    long long v = d->a + (long long)k * d->step;
    int n =
        d->width ? snprintf(buf, EXPAND_VALUE_MAX, "%0*lld", d->width, v) : snprintf(buf, EXPAND_VALUE_MAX, "%lld", v);
    *len = (size_t)n;
    return buf;
}

void expand_split(const edim_t *dims, int ndims, uint64_t k, uint64_t *idx)
{
    for (int i = ndims - 1; i >= 0; i--) {
        idx[i] = k % dims[i].n;
        k /= dims[i].n;
    }
}

/* Is s[0..n) a brace group? Fills d (list items go to items/lens). */
static int group(const char *s, size_t n, edim_t *d, const char **items, size_t *lens, size_t *nitems)
{
    char err[8];
    if (memchr(s, '{', n))
        return 0;
    if (edim_range(d, s, n, err, sizeof err) == 0)
        return 1;
    if (!memchr(s, ',', n))
        return 0;
    memset(d, 0, sizeof *d);
    d->items = items + *nitems;
    d->lens = lens + *nitems;
    const char *p = s, *end = s + n;
    for (;;) {
        const char *c = memchr(p, ',', (size_t)(end - p));
        const char *e = c ? c : end;
        items[*nitems] = p;
        lens[(*nitems)++] = (size_t)(e - p);
        d->n++;
        if (!c)
            break;
        p = c + 1;
    }
    return 1;
}

int eline_parse(eline_t *e, const char *line, size_t n, char *err, size_t errlen)
{
    memset(e, 0, sizeof *e);
    size_t commas = 0;
    for (size_t i = 0; i < n; i++)
        commas += line[i] == ',';
    e->items = malloc((commas + 2 * EXPAND_MAX_DIMS) * sizeof *e->items);
    e->lens = malloc((commas + 2 * EXPAND_MAX_DIMS) * sizeof *e->lens);
    if (!e->items || !e->lens) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    size_t nitems = 0, lit = 0;
    char quote = 0;
    e->total = 1;
    for (size_t i = 0; i < n; i++) {
        char c = line[i];
        if (quote) {
            if (c == quote)
                quote = 0;
            else if (c == '\\' && quote == '"')
                i++;
            continue;
        }
        if (c == '\'' || c == '"') {
            quote = c;
        } else if (c == '\\') {
            i++;
        } else if (c == '$' && i + 1 < n && line[i + 1] == '{') {
            const char *close = memchr(line + i, '}', n - i);
            if (!close)
                break;
            i = (size_t)(close - line);
        } else if (c == '{') {
            const char *close = memchr(line + i + 1, '}', n - i - 1);
            if (!close)
                break;
            size_t gl = (size_t)(close - line) - i - 1;
            edim_t d;
            if (!group(line + i + 1, gl, &d, e->items, e->lens, &nitems))
                continue;
            if (e->ndims == EXPAND_MAX_DIMS) {
                snprintf(err, errlen, "more than %d brace groups on one line", EXPAND_MAX_DIMS);
                return -1;
            }
            if (d.n > EXPAND_MAX_TOTAL / e->total) {
                snprintf(err, errlen, "the brace groups expand to more than %llu tasks", EXPAND_MAX_TOTAL);
                return -1;
            }
            e->total *= d.n;
            e->lit[e->ndims] = line + lit;
            e->litlen[e->ndims] = i - lit;
            e->dim[e->ndims++] = d;
            i += gl + 1;
            lit = i + 1;
        }
    }
    e->lit[e->ndims] = line + lit;
    e->litlen[e->ndims] = n - lit;
    return 0;
}

void eline_free(eline_t *e)
{
    free(e->items);
    free(e->lens);
    e->items = NULL;
    e->lens = NULL;
}

static int append(char **buf, size_t *cap, size_t *len, const char *s, size_t n)
{
    if (*len + n + 1 > *cap) {
        size_t c = *cap ? *cap : 128;
        while (c < *len + n + 1)
            c *= 2;
        char *p = realloc(*buf, c);
        if (!p)
            return -1;
        *buf = p;
        *cap = c;
    }
    memcpy(*buf + *len, s, n);
    *len += n;
    (*buf)[*len] = '\0';
    return 0;
}

long eline_get(const eline_t *e, uint64_t k, char **buf, size_t *cap)
{
    uint64_t idx[EXPAND_MAX_DIMS];
    size_t len = 0;
    expand_split(e->dim, e->ndims, k, idx);
    for (int i = 0; i <= e->ndims; i++) {
        if (append(buf, cap, &len, e->lit[i], e->litlen[i]))
            return -1;
        if (i < e->ndims) {
            char v[EXPAND_VALUE_MAX];
            size_t vl;
            const char *p = edim_value(&e->dim[i], idx[i], v, &vl);
            if (append(buf, cap, &len, p, vl))
                return -1;
        }
    }
    if (!*buf && append(buf, cap, &len, "", 0))
        return -1;
    return (long)len;
}
