/* SPDX-License-Identifier: BSD-3-Clause */
/* Task files: lines, plain commands with brace sweeps, dependency
 * resolution, cycles and resource checks. JSON lines are in taskjson.c. */
#include "tasks/taskfile.h"
#include "tasks/expand.h"
#include "tessera/error.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum { LINE_MAX_BYTES = 1 << 20 };

int tparse_fail(tparse_t *p, const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (p->line)
        return tsr_error_set(TSR_EDATA, "%s:%u: %s", p->o->origin, p->line, msg);
    return tsr_error_set(TSR_EDATA, "%s: %s", p->o->origin, msg);
}

int task_id_valid(const char *id, size_t n)
{
    if (n == 0 || n > 95 || id[0] == '.' || id[0] == '-')
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = id[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
              c == '-' || c == ':' || c == '@' || c == '+' || c == '='))
            return 0;
    }
    return 1;
}

/* Printable form of a string for messages: control and non-ASCII bytes
 * as \xNN, at most about 60 characters. */
static const char *shown(const char *s, size_t n, char *buf, size_t len)
{
    size_t o = 0;
    for (size_t i = 0; i < n && o + 8 < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (o > 60) {
            o += (size_t)snprintf(buf + o, len - o, "...");
            break;
        }
        if (c < 0x20 || c >= 0x7f || c == '\'')
            o += (size_t)snprintf(buf + o, len - o, "\\x%02x", c);
        else
            buf[o++] = (char)c;
    }
    buf[o] = '\0';
    return buf;
}

/* Decimal digits of v into buf (no terminator); returns how many. */
static size_t utoa(uint64_t v, char *buf)
{
    char tmp[24];
    size_t n = 0;
    do
        tmp[n++] = (char)('0' + v % 10);
    while ((v /= 10));
    for (size_t i = 0; i < n; i++)
        buf[i] = tmp[n - 1 - i];
    return n;
}

task_t *tparse_task(tparse_t *p, const char *id, size_t idlen, const char *cmd, size_t cmdlen, uint64_t k,
                    uint64_t total, uint32_t *idx)
{
    ttable_t *tt = p->tt;
    char def[48], sh[128];
    if (!id) {
        const char *pre = p->o->id_prefix ? p->o->id_prefix : "";
        idlen = (size_t)snprintf(def, 17, "%.16s", pre);
        idlen += utoa(p->line, def + idlen);
        if (total > 1) {
            def[idlen++] = '.';
            idlen += utoa(k + 1, def + idlen);
        }
        def[idlen] = '\0';
        id = def;
    }
    if (!task_id_valid(id, idlen)) {
        tparse_fail(p,
                    "task id '%s' is not valid: use 1 to 95 of A-Z a-z 0-9 . _ - : @ + =, not starting "
                    "with . or -",
                    shown(id, idlen, sh, sizeof sh));
        return NULL;
    }
    task_t *t = ttable_add(tt, idx);
    char *tid = t ? tarena_strndup(&tt->arena, id, idlen) : NULL;
    char *tcmd = tid ? tarena_strndup(&tt->arena, cmd, cmdlen) : NULL;
    if (!tcmd) {
        if (t)
            tt->n--;
        tsr_error_set(TSR_ENOMEM, "%s: out of memory for the tasks", p->o->origin);
        return NULL;
    }
    t->id = tid;
    t->cmd = tcmd;
    t->line = p->line;
    t->dynamic = (uint8_t)(p->o->dynamic != 0);
    uint32_t old;
    int r = idmap_add(&tt->ids, *idx, &old);
    if (r != 0) {
        tt->n--;
        if (r < 0)
            tsr_error_set(TSR_ENOMEM, "%s: out of memory for the task ids", p->o->origin);
        else if (old >= p->first)
            tparse_fail(p, "duplicate task id '%s' (first defined on line %u)", tid, tt->t[old].line);
        else
            tparse_fail(p, "duplicate task id '%s': the farm already has it", tid);
        return NULL;
    }
    return t;
}

int tparse_after(tparse_t *p, uint32_t task, const char *dep, size_t n)
{
    char sh[128];
    size_t idn = n && dep[n - 1] == '*' ? n - 1 : n;
    if (!(idn == 0 && n == 1) && !task_id_valid(dep, idn))
        return tparse_fail(p, "task '%s': 'after' names '%s', which is not a task id (or a prefix ending in *)",
                           p->tt->t[task].id, shown(dep, n, sh, sizeof sh));
    if (p->npend == p->cappend) {
        size_t cap = p->cappend ? 2 * p->cappend : 256;
        tpending_t *q = realloc(p->pend, cap * sizeof *q);
        if (!q)
            return tsr_error_set(TSR_ENOMEM, "%s: out of memory", p->o->origin);
        p->pend = q;
        p->cappend = cap;
    }
    const char *d = tarena_strndup(&p->tmp, dep, n);
    if (!d)
        return tsr_error_set(TSR_ENOMEM, "%s: out of memory", p->o->origin);
    p->pend[p->npend++] = (tpending_t){task, d};
    return TSR_OK;
}

/* Control bytes and invalid UTF-8 are refused, shown escaped. */
static int check_bytes(tparse_t *p, const char *s, size_t n)
{
    char sh[128];
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        size_t len = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 0;
        int ok = len > 0 && i + len <= n && (c >= 0x20 || c == '\t') && c != 0x7f;
        for (size_t j = 1; ok && j < len; j++)
            ok = ((unsigned char)s[i + j] & 0xc0) == 0x80;
        if (len == 2 && c < 0xc2)
            ok = 0; /* overlong */
        if (!ok) {
            size_t from = i > 20 ? i - 20 : 0;
            return tparse_fail(p, "%s at byte %zu: '%s' (the line must be UTF-8 text without control characters)",
                               c == 0 ? "a NUL byte" : "a control character or invalid UTF-8", i + 1,
                               shown(s + from, n - from > 40 ? 40 : n - from, sh, sizeof sh));
        }
        i += len;
    }
    return TSR_OK;
}

static int plain_line(tparse_t *p, const char *line, size_t n)
{
    uint32_t idx;
    if (!memchr(line, '{', n)) /* the common case: nothing to expand */
        return tparse_task(p, NULL, 0, line, n, 0, 1, &idx) ? TSR_OK : TSR_EDATA;
    eline_t e;
    char err[160];
    if (eline_parse(&e, line, n, err, sizeof err) != 0) {
        eline_free(&e);
        return tparse_fail(p, "%s", err);
    }
    int rc = TSR_OK;
    for (uint64_t k = 0; k < e.total && rc == TSR_OK; k++) {
        long len = eline_get(&e, k, &p->buf, &p->bufcap);
        if (len < 0)
            rc = tsr_error_set(TSR_ENOMEM, "%s: out of memory", p->o->origin);
        else if (!tparse_task(p, NULL, 0, p->buf, (size_t)len, k, e.total, &idx))
            rc = TSR_EDATA;
    }
    eline_free(&e);
    return rc;
}

static int resolve(tparse_t *p)
{
    ttable_t *tt = p->tt;
    for (size_t i = 0; i < p->npend; i++) {
        const tpending_t *d = &p->pend[i];
        size_t n = strlen(d->dep);
        p->line = tt->t[d->task].line;
        if (n && d->dep[n - 1] == '*') {
            /* Every task whose id starts with the prefix, but the task itself. */
            int any = 0;
            for (uint32_t j = 0; j < tt->n; j++)
                if (j != d->task && strncmp(tt->t[j].id, d->dep, n - 1) == 0) {
                    any = 1;
                    if (ttable_add_dep(tt, d->task, j))
                        return tsr_error_set(TSR_ENOMEM, "%s: out of memory", p->o->origin);
                }
            if (!any)
                return tparse_fail(p, "task '%s' waits for '%s', which matches no task", tt->t[d->task].id, d->dep);
            continue;
        }
        uint32_t j = idmap_find(&tt->ids, d->dep, n);
        if (j == IDMAP_NONE)
            return tparse_fail(p, "task '%s' waits for unknown task '%s'", tt->t[d->task].id, d->dep);
        if (ttable_add_dep(tt, d->task, j))
            return tsr_error_set(TSR_ENOMEM, "%s: out of memory", p->o->origin);
    }
    return TSR_OK;
}

/* Depth-first over the new tasks' dependencies; older tasks cannot wait
 * for new ones, so any cycle lies among the new. Names the cycle. */
static int cycles(tparse_t *p)
{
    ttable_t *tt = p->tt;
    uint32_t n = tt->n - p->first;
    uint8_t *color = calloc(n ? n : 1, 1);
    uint32_t *stack = malloc((n ? n : 1) * sizeof *stack), *pos = malloc((n ? n : 1) * sizeof *pos);
    int rc = TSR_OK;
    if (!color || !stack || !pos) {
        rc = tsr_error_set(TSR_ENOMEM, "%s: out of memory", p->o->origin);
        goto done;
    }
    for (uint32_t s = 0; s < n && rc == TSR_OK; s++) {
        if (color[s])
            continue;
        size_t top = 0;
        stack[0] = p->first + s;
        pos[0] = 0;
        color[s] = 1;
        while (top != (size_t)-1 && rc == TSR_OK) {
            const task_t *t = &tt->t[stack[top]];
            if (pos[top] == t->ndeps) {
                color[stack[top] - p->first] = 2;
                top--;
                continue;
            }
            uint32_t d = tt->deps[t->dep_off + pos[top]++];
            if (d < p->first || color[d - p->first] == 2)
                continue;
            if (color[d - p->first] == 1) {
                char msg[512];
                size_t o = 0, from = 0;
                while (stack[from] != d)
                    from++;
                for (size_t i = from; i <= top && o < sizeof msg - 240; i++)
                    o += (size_t)snprintf(msg + o, sizeof msg - o, "%s -> ", tt->t[stack[i]].id);
                snprintf(msg + o, sizeof msg - o, "%s", tt->t[d].id);
                p->line = tt->t[d].line;
                rc = tparse_fail(p, "dependency cycle: %s (each waits for the next)", msg);
                break;
            }
            color[d - p->first] = 1;
            stack[++top] = d;
            pos[top] = 0;
        }
    }
done:
    free(color);
    free(stack);
    free(pos);
    return rc;
}

static int resources(tparse_t *p)
{
    const tparse_opts_t *o = p->o;
    for (uint32_t i = p->first; i < p->tt->n; i++) {
        const task_t *t = &p->tt->t[i];
        p->line = t->line;
        if (o->max_cores > 0 && t->cores > o->max_cores)
            return tparse_fail(p,
                               "task '%s' asks for %u cores; the largest rank has %d (ask for fewer, or run "
                               "fewer ranks per node)",
                               t->id, t->cores, o->max_cores);
        if (o->max_cores > 0 && t->gpus > o->max_gpus)
            return tparse_fail(p, "task '%s' asks for %u GPUs; the rank with most has %d", t->id, t->gpus, o->max_gpus);
    }
    return TSR_OK;
}

int taskfile_parse(ttable_t *tt, const char *text, size_t len, const tparse_opts_t *o, uint32_t *added)
{
    tparse_t p;
    memset(&p, 0, sizeof p);
    p.tt = tt;
    p.o = o;
    p.first = tt->n;
    int rc = TSR_OK;
    size_t lines = 1;
    for (const char *q = text; (q = memchr(q, '\n', (size_t)(text + len - q))); q++)
        lines++;
    if (ttable_reserve(tt, lines)) /* a lower bound with sweeps; grows beyond */
        return tsr_error_set(TSR_ENOMEM, "%s: out of memory for %zu tasks", o->origin, lines);
    const char *s = text, *end = text + len;
    while (s < end && rc == TSR_OK) {
        const char *nl = memchr(s, '\n', (size_t)(end - s));
        const char *e = nl ? nl : end;
        p.line++;
        size_t n = (size_t)(e - s);
        if (n && s[n - 1] == '\r')
            n--;
        const char *b = s;
        while (n && (*b == ' ' || *b == '\t')) {
            b++;
            n--;
        }
        while (n && (b[n - 1] == ' ' || b[n - 1] == '\t'))
            n--;
        if (n > LINE_MAX_BYTES)
            rc = tparse_fail(&p, "the line is %zu bytes long; at most %d are allowed", n, LINE_MAX_BYTES);
        else if (n && b[0] != '#' && (rc = check_bytes(&p, b, n)) == TSR_OK)
            rc = b[0] == '{' ? tparse_json(&p, b, n) : plain_line(&p, b, n);
        s = e + 1;
    }
    if (rc == TSR_OK && tt->n == p.first && !o->dynamic && !o->quiet)
        tsr_log(TSR_LOG_WARN, "%s: no tasks (empty, or only comments)", o->origin);
    if (rc == TSR_OK && tt->n == p.first && o->dynamic) {
        p.line = 0;
        rc = tparse_fail(&p, "no tasks in the submission");
    }
    if (rc == TSR_OK)
        rc = resolve(&p);
    if (rc == TSR_OK)
        rc = cycles(&p);
    if (rc == TSR_OK)
        rc = resources(&p);
    if (rc != TSR_OK)
        ttable_truncate(tt, p.first);
    else if (added)
        *added = tt->n - p.first;
    free(p.pend);
    free(p.buf);
    tarena_free(&p.tmp);
    return rc;
}

int taskfile_read(const char *path, char **text, size_t *len)
{
    struct stat st;
    *text = NULL;
    *len = 0;
    if (stat(path, &st) != 0)
        return tsr_error_set(TSR_EDATA, "task file %s: %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode))
        return tsr_error_set(TSR_EDATA, "task file %s: not a regular file", path);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return tsr_error_set(TSR_EDATA, "task file %s: %s", path, strerror(errno));
    size_t cap = (size_t)st.st_size + 1, n = 0;
    char *buf = malloc(cap);
    int rc = buf ? TSR_OK : tsr_error_set(TSR_ENOMEM, "task file %s: out of memory", path);
    while (rc == TSR_OK) {
        if (n + 1 == cap) {
            char *b = realloc(buf, cap * 2); /* the file grew while we read it */
            if (!b) {
                rc = tsr_error_set(TSR_ENOMEM, "task file %s: out of memory", path);
                break;
            }
            buf = b;
            cap *= 2;
        }
        ssize_t r = read(fd, buf + n, cap - n - 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            rc = tsr_error_set(TSR_EIO, "task file %s: %s", path, strerror(errno));
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    if (rc) {
        free(buf);
        return rc;
    }
    buf[n] = '\0';
    *text = buf;
    *len = n;
    return TSR_OK;
}
