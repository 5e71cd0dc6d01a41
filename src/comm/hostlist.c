/* SPDX-License-Identifier: BSD-3-Clause */
/* SLURM hostlist expressions, matched without expanding them: items split
 * by commas outside brackets, each literal text and bracket groups of
 * numbers and ranges ("n[0-15,20]", "rack[1-2]n[001-016]"). A bound written
 * with a leading zero fixes the width of the digits it matches, as in
 * SLURM; otherwise a number is written without leading zeros. */
#include "comm/topology.h"
#include "tessera/error.h"

#include <ctype.h>
#include <string.h>

enum { MAX_DIGITS = 9 };

/* One range of a bracket group's text b[0..n) at i: its bounds, the
 * digits written for each (d2 = 0: a single number), and where the next
 * one starts (past a comma). */
typedef struct range {
    long lo, hi;
    size_t d1, d2, next;
    int comma_or_end; /* the range ends the group or a comma follows */
} range_t;

static range_t range_at(const char *b, size_t n, size_t i)
{
    range_t r = {0, 0, 0, 0, 0, 1};
    while (i + r.d1 < n && isdigit((unsigned char)b[i + r.d1]) && r.d1 <= MAX_DIGITS)
        r.lo = r.lo * 10 + (b[i + r.d1++] - '0');
    r.hi = r.lo;
    size_t at = i + r.d1;
    if (at < n && b[at] == '-') {
        r.hi = 0;
        while (at + 1 + r.d2 < n && isdigit((unsigned char)b[at + 1 + r.d2]) && r.d2 <= MAX_DIGITS)
            r.hi = r.hi * 10 + (b[at + 1 + r.d2++] - '0');
        at += 1 + r.d2;
        if (!r.d2)
            r.d1 = 0; /* "lo-": no upper bound */
    }
    r.comma_or_end = at >= n || b[at] == ',';
    r.next = at + 1;
    return r;
}

/* One bracket group's text, b[0..n): its ranges checked. */
static int check_group(const char *expr, const char *b, size_t n)
{
    for (size_t i = 0; i <= n;) {
        range_t r = range_at(b, n, i);
        if (!r.d1 || r.d1 > MAX_DIGITS || r.d2 > MAX_DIGITS || !r.comma_or_end || r.hi < r.lo)
            return tsr_error_set(TSR_EINVAL,
                                 "hostlist '%s': bad range '%.*s' in brackets; expected numbers and lo-hi ranges "
                                 "(lo <= hi, at most %d digits) split by commas",
                                 expr, (int)n, b, MAX_DIGITS);
        i = r.next;
    }
    return TSR_OK;
}

/* The expression's syntax: brackets closed, not nested, ranges valid. */
static int check(const char *expr)
{
    if (!*expr)
        return tsr_error_set(TSR_EINVAL, "hostlist is empty; expected host names such as n[0-15]");
    for (const char *p = expr; *p; p++) {
        if (*p == ']')
            return tsr_error_set(TSR_EINVAL, "hostlist '%s': ']' without '['", expr);
        if (*p != '[')
            continue;
        const char *e = strpbrk(p + 1, "[]");
        if (!e || *e != ']')
            return tsr_error_set(TSR_EINVAL, "hostlist '%s': '[' not closed by ']' (brackets do not nest)", expr);
        int rc = check_group(expr, p + 1, (size_t)(e - p - 1));
        if (rc)
            return rc;
        p = e;
    }
    return TSR_OK;
}

/* Whether the digits h[0..len) are in one of the group's (checked) ranges. */
static int in_group(const char *b, size_t n, const char *h, size_t len)
{
    long v = 0;
    for (size_t j = 0; j < len; j++)
        v = v * 10 + (h[j] - '0');
    for (size_t i = 0; i < n;) {
        range_t r = range_at(b, n, i);
        int fixed = r.d1 > 1 && b[i] == '0';
        int width_ok = fixed ? len == r.d1 : (len == 1 || h[0] != '0');
        if (width_ok && v >= r.lo && v <= r.hi)
            return 1;
        i = r.next;
    }
    return 0;
}

/* Whether host matches the item p[0..n) (literals and bracket groups). */
static int match_item(const char *p, size_t n, const char *h)
{
    while (n && *p != '[') {
        if (*h != *p)
            return 0;
        p++, h++, n--;
    }
    if (!n)
        return *h == '\0';
    const char *e = memchr(p, ']', n);
    size_t gl = (size_t)(e - p - 1), rest = n - (size_t)(e - p) - 1;
    size_t digits = 0;
    while (digits < MAX_DIGITS && isdigit((unsigned char)h[digits]))
        digits++;
    for (size_t len = 1; len <= digits; len++)
        if (in_group(p + 1, gl, h, len) && match_item(e + 1, rest, h + len))
            return 1;
    return 0;
}

int tsr_topo_hostlist_match(const char *expr, const char *host)
{
    int rc = check(expr);
    if (rc)
        return rc;
    const char *p = expr;
    while (*p) {
        const char *q = p;
        int depth = 0;
        while (*q && (depth || *q != ',')) {
            depth += *q == '[' ? 1 : *q == ']' ? -1 : 0;
            q++;
        }
        if (q == p)
            return tsr_error_set(TSR_EINVAL, "hostlist '%s': an empty name between commas", expr);
        if (match_item(p, (size_t)(q - p), host))
            return 1;
        p = *q ? q + 1 : q;
        if (*q && !*p)
            return tsr_error_set(TSR_EINVAL, "hostlist '%s': ends with a comma", expr);
    }
    return 0;
}
