/* SPDX-License-Identifier: BSD-3-Clause */
/* INI loading through inih, checked against the schema. */
#include "tessera/config.h"
#include "tessera/error.h"
#include "config/schema.h"
#include "common/fileutil.h"
#include "common/text.h"

#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NKEYS_MAX 128

struct tsr_config {
    int nkeys;
    char *value[NKEYS_MAX];
    char origin[NKEYS_MAX][128];
    char dir[4096];
    char file[4096];
};

static int key_index(const tsr_key_t *k) { return (int)(k - tsr_schema); }

int tsr_config_create(tsr_config_t **out)
{
    tsr_config_t *c = calloc(1, sizeof *c);
    if (!c)
        return tsr_error_set(TSR_ENOMEM, "config: out of memory");
    for (const tsr_key_t *k = tsr_schema; k->section; k++) {
        int i = key_index(k);
        c->value[i] = strdup(k->def);
        if (!c->value[i]) {
            tsr_config_destroy(c);
            return tsr_error_set(TSR_ENOMEM, "config: out of memory");
        }
        snprintf(c->origin[i], sizeof c->origin[i], "default");
        c->nkeys = i + 1;
    }
    strcpy(c->dir, ".");
    *out = c;
    return TSR_OK;
}

void tsr_config_destroy(tsr_config_t *c)
{
    if (!c)
        return;
    for (int i = 0; i < c->nkeys; i++)
        free(c->value[i]);
    free(c);
}

/* The nearest "section.key" (or section name if key is NULL). */
static void nearest(const char *section, const char *key, char *buf, size_t len)
{
    int best = INT_MAX;
    buf[0] = '\0';
    for (const tsr_key_t *k = tsr_schema; k->section; k++) {
        int d;
        if (key) {
            /* Keys in the same section are likelier; a wrong section costs 2. */
            d = tsr_text_distance(key, k->key) + (strcmp(section, k->section) ? 2 : 0);
        } else {
            d = tsr_text_distance(section, k->section);
        }
        if (d < best) {
            best = d;
            if (key)
                snprintf(buf, len, "%s.%s", k->section, k->key);
            else
                snprintf(buf, len, "[%s]", k->section);
        }
    }
}

static void choices_text(const tsr_key_t *k, char *buf, size_t len)
{
    size_t n = 0;
    buf[0] = '\0';
    for (int i = 0; k->choices[i]; i++)
        n += (size_t)snprintf(buf + n, n < len ? len - n : 0, "%s%s", i ? "|" : "", k->choices[i]);
}

static int parse_long(const char *s, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    while (*end && isspace((unsigned char)*end))
        end++;
    if (errno || end == s || *end)
        return -1;
    *out = v;
    return 0;
}

static int parse_bool(const char *s, int *out)
{
    static const char *const yes[] = {"true", "yes", "on", "1"}, *const no[] = {"false", "no", "off", "0"};
    for (int i = 0; i < 4; i++) {
        if (strcasecmp(s, yes[i]) == 0)
            return *out = 1, 0;
        if (strcasecmp(s, no[i]) == 0)
            return *out = 0, 0;
    }
    return -1;
}

/* Checks a value against its key's type; where names the origin. */
static int check_value(const tsr_key_t *k, const char *v, const char *where)
{
    long l;
    int b;
    char buf[256];
    switch (k->type) {
    case TSR_T_STR: return TSR_OK;
    case TSR_T_INT:
        if (parse_long(v, &l) || l < k->min || l > k->max)
            return tsr_error_set(TSR_EINVAL, "%s: [%s] %s = '%s': expected an integer from %ld to %ld", where,
                                 k->section, k->key, v, k->min, k->max);
        return TSR_OK;
    case TSR_T_DOUBLE: {
        char *end;
        errno = 0;
        double d = strtod(v, &end);
        if (errno || end == v || *end || !isfinite(d) || d < 0)
            return tsr_error_set(TSR_EINVAL, "%s: [%s] %s = '%s': expected a finite number >= 0", where, k->section,
                                 k->key, v);
        return TSR_OK;
    }
    case TSR_T_BOOL:
        if (parse_bool(v, &b))
            return tsr_error_set(TSR_EINVAL, "%s: [%s] %s = '%s': expected true or false", where, k->section, k->key,
                                 v);
        return TSR_OK;
    case TSR_T_ENUM:
        for (int i = 0; k->choices[i]; i++)
            if (strcmp(v, k->choices[i]) == 0)
                return TSR_OK;
        choices_text(k, buf, sizeof buf);
        return tsr_error_set(TSR_EINVAL, "%s: [%s] %s = '%s': expected one of %s", where, k->section, k->key, v, buf);
    case TSR_T_INTS: {
        /* Empty means "none" (e.g. no hidden layers); an empty item is a typo. */
        const char *p = v;
        int n = 0;
        while (*v) {
            char item[64];
            size_t len = strcspn(p, ",");
            snprintf(item, sizeof item, "%.*s", len < sizeof item ? (int)len : (int)sizeof item - 1, p);
            const char *t = item;
            while (isspace((unsigned char)*t))
                t++;
            if (!*t)
                return tsr_error_set(TSR_EINVAL,
                                     "%s: [%s] %s = '%s': item %d is empty; expected comma-separated "
                                     "integers from %ld to %ld, none empty",
                                     where, k->section, k->key, v, n + 1, k->min, k->max);
            if (len >= sizeof item || parse_long(t, &l) || l < k->min || l > k->max || n >= 32)
                return tsr_error_set(TSR_EINVAL,
                                     "%s: [%s] %s = '%s': expected up to 32 comma-separated integers from %ld to %ld",
                                     where, k->section, k->key, v, k->min, k->max);
            n++;
            if (!p[len])
                break;
            p += len + 1;
        }
        return TSR_OK;
    }
    }
    return TSR_EINTERNAL;
}

static int store(tsr_config_t *c, const char *section, const char *key, const char *value, const char *where)
{
    const tsr_key_t *k = tsr_schema_find(section, key);
    char near[160];
    if (!tsr_schema_has_section(section)) {
        nearest(section, NULL, near, sizeof near);
        return tsr_error_set(TSR_EINVAL, "%s: unknown section [%s]; did you mean %s?", where, section, near);
    }
    if (!k) {
        nearest(section, key, near, sizeof near);
        return tsr_error_set(TSR_EINVAL, "%s: unknown key '%s' in [%s]; did you mean %s?", where, key, section, near);
    }
    int rc = check_value(k, value, where);
    if (rc)
        return rc;
    char *dup = strdup(value);
    if (!dup)
        return tsr_error_set(TSR_ENOMEM, "config: out of memory");
    int i = key_index(k);
    free(c->value[i]);
    c->value[i] = dup;
    snprintf(c->origin[i], sizeof c->origin[i], "%.127s", where);
    return TSR_OK;
}

/* inih calls the reader once per line, so counting here gives line numbers
 * without relying on inih's optional INI_HANDLER_LINENO build flag. */
typedef struct {
    FILE *f;
    int line;
    const char *path;
    tsr_config_t *cfg;
    int rc;
    int set_on[NKEYS_MAX]; /* the line each key was set on in this file, or 0 */
    int indented;          /* the line just read starts with a space or tab */
    int last_key;          /* the key of the previous line that set one, or -1 */
} load_ctx_t;

static char *reader(char *str, int num, void *stream)
{
    load_ctx_t *ctx = stream;
    int n = 0, c, nul = 0;
    while (n < num - 1 && (c = getc(ctx->f)) != EOF) {
        nul |= c == '\0';
        str[n++] = (char)c;
        if (c == '\n')
            break;
    }
    if (n == 0)
        return NULL;
    str[n] = '\0';
    ctx->line++;
    ctx->indented = str[0] == ' ' || str[0] == '\t';
    /* inih would see the line end at the NUL and drop the rest unseen. */
    if (nul && !ctx->rc)
        ctx->rc = tsr_error_set(TSR_EINVAL, "%s:%d: a NUL byte; expected a text file", ctx->path, ctx->line);
    return str;
}

static int handler(void *user, const char *section, const char *name, const char *value)
{
    load_ctx_t *ctx = user;
    char where[128];
    if (ctx->rc)
        return 0;
    snprintf(where, sizeof where, "%.100s:%d", ctx->path, ctx->line);
    if (!section[0]) {
        ctx->rc = tsr_error_set(TSR_EINVAL, "%s: key '%s' before any [section]", where, name);
        return 0;
    }
    /* The later line would silently win: say which two lines disagree. */
    const tsr_key_t *k = tsr_schema_find(section, name);
    if (k && ctx->indented && k->type == TSR_T_STR && ctx->last_key == key_index(k)) {
        /* An indented line continues a text value (inih's multi-line
         * values): [model] layers over several lines. */
        const char *prev = tsr_config_get(ctx->cfg, section, name);
        size_t len = strlen(prev) + strlen(value) + 2;
        char *joined = malloc(len);
        if (!joined) {
            ctx->rc = tsr_error_set(TSR_ENOMEM, "config: out of memory");
            return 0;
        }
        snprintf(joined, len, "%s %s", prev, value);
        ctx->rc = store(ctx->cfg, section, name, joined, where);
        free(joined);
        return ctx->rc == TSR_OK;
    }
    ctx->last_key = k ? key_index(k) : -1;
    if (k && ctx->set_on[key_index(k)]) {
        ctx->rc = tsr_error_set(TSR_EINVAL, "%s: duplicate key '%s' in [%s]; it is already set on line %d", where, name,
                                section, ctx->set_on[key_index(k)]);
        return 0;
    }
    ctx->rc = store(ctx->cfg, section, name, value, where);
    if (k && ctx->rc == TSR_OK)
        ctx->set_on[key_index(k)] = ctx->line;
    return ctx->rc == TSR_OK;
}

int tsr_config_load(tsr_config_t *c, const char *path)
{
    load_ctx_t ctx = {.path = path, .cfg = c, .last_key = -1};
    int rc = tsr_file_check_input(path, "an INI configuration file");
    /* A config that is not there is a usage error (exit 2); one that is a
     * FIFO or a directory is bad input like any other file (exit 3). */
    if (rc == TSR_EDATA && access(path, F_OK) != 0)
        rc = tsr_error_set(TSR_EINVAL, "%s: cannot open config file: %s", path, strerror(ENOENT));
    if (rc)
        return rc;
    ctx.f = fopen(path, "r");
    if (!ctx.f)
        return tsr_error_set(errno == ENOENT ? TSR_EINVAL : TSR_EIO, "%s: cannot open config file: %s", path,
                             strerror(errno));
    int err = ini_parse_stream(reader, &ctx, handler, &ctx);
    fclose(ctx.f);
    if (ctx.rc)
        return ctx.rc;
    if (err > 0)
        return tsr_error_set(TSR_EINVAL, "%s:%d: malformed line: expected '[section]' or 'key = value'", path, err);
    if (err < 0)
        return tsr_error_set(TSR_EIO, "%s: cannot read config file", path);
    const char *slash = strrchr(path, '/');
    if (slash)
        snprintf(c->dir, sizeof c->dir, "%.*s", (int)(slash - path), path);
    else
        strcpy(c->dir, ".");
    if (!c->dir[0])
        strcpy(c->dir, "/");
    snprintf(c->file, sizeof c->file, "%s", path);
    return TSR_OK;
}

int tsr_config_set(tsr_config_t *c, const char *assignment)
{
    const char *dot = strchr(assignment, '.');
    const char *eq = strchr(assignment, '=');
    char section[64], key[64], where[160];
    snprintf(where, sizeof where, "--set %.140s", assignment);
    if (!dot || !eq || dot > eq || dot == assignment || eq == dot + 1)
        return tsr_error_set(TSR_EINVAL, "%s: expected section.key=value", where);
    snprintf(section, sizeof section, "%.*s", (int)(dot - assignment), assignment);
    snprintf(key, sizeof key, "%.*s", (int)(eq - dot - 1), dot + 1);
    return store(c, section, key, eq + 1, where);
}

static const char *raw(const tsr_config_t *c, const char *section, const char *key, tsr_type_t type)
{
    const tsr_key_t *k = tsr_schema_find(section, key);
    if (!k || (k->type != type && !(type == TSR_T_STR && k->type == TSR_T_ENUM)))
        return NULL;
    return c->value[key_index(k)];
}

const char *tsr_config_get(const tsr_config_t *c, const char *section, const char *key)
{
    const char *v = raw(c, section, key, TSR_T_STR);
    return v ? v : "";
}

long tsr_config_get_long(const tsr_config_t *c, const char *section, const char *key)
{
    const char *v = raw(c, section, key, TSR_T_INT);
    return v ? strtol(v, NULL, 10) : 0;
}

double tsr_config_get_double(const tsr_config_t *c, const char *section, const char *key)
{
    const char *v = raw(c, section, key, TSR_T_DOUBLE);
    return v ? strtod(v, NULL) : 0.0;
}

int tsr_config_get_bool(const tsr_config_t *c, const char *section, const char *key)
{
    const char *v = raw(c, section, key, TSR_T_BOOL);
    int b = 0;
    if (v)
        parse_bool(v, &b);
    return b;
}

int tsr_config_get_ints(const tsr_config_t *c, const char *section, const char *key, long *vals, int max)
{
    const char *v = raw(c, section, key, TSR_T_INTS);
    char tmp[1024], *save = NULL;
    int n = 0;
    if (!v)
        return 0;
    snprintf(tmp, sizeof tmp, "%s", v);
    for (char *t = strtok_r(tmp, ",", &save); t && n < max; t = strtok_r(NULL, ",", &save))
        vals[n++] = strtol(t, NULL, 10);
    return n;
}

const char *tsr_config_origin(const tsr_config_t *c, const char *section, const char *key)
{
    const tsr_key_t *k = tsr_schema_find(section, key);
    return k ? c->origin[key_index(k)] : "unknown";
}

int tsr_config_changed(const tsr_config_t *c, const char *section, const char *key, char *buf, size_t len)
{
    size_t n = 0;
    int count = 0;
    if (len)
        buf[0] = '\0';
    for (int i = 0; i < c->nkeys; i++) {
        const tsr_key_t *k = &tsr_schema[i];
        if (strcmp(k->section, section) != 0 || (key && strcmp(k->key, key) != 0) ||
            strcmp(c->origin[i], "default") == 0)
            continue;
        count++;
        if (n < len) {
            int w = snprintf(buf + n, len - n, "%s%s.%s", n ? ", " : "", k->section, k->key);
            n = w < 0 ? len : n + (size_t)w;
        }
    }
    return count;
}

const char *tsr_config_file(const tsr_config_t *c) { return c->file; }

const char *tsr_config_dir(const tsr_config_t *c) { return c->dir; }

char *tsr_config_dump(const tsr_config_t *c)
{
    size_t cap = 8192, n = 0;
    char *buf = malloc(cap);
    const char *last = "";
    if (!buf)
        return NULL;
    buf[0] = '\0';
    for (const tsr_key_t *k = tsr_schema; k->section; k++) {
        const char *v = c->value[key_index(k)];
        size_t need = strlen(k->section) + strlen(k->key) + strlen(v) + 16;
        if (n + need >= cap) {
            char *nb = realloc(buf, cap * 2 + need);
            if (!nb) {
                free(buf);
                return NULL;
            }
            buf = nb;
            cap = cap * 2 + need;
        }
        if (strcmp(last, k->section) != 0)
            n += (size_t)sprintf(buf + n, "%s[%s]\n", n ? "\n" : "", k->section);
        n += (size_t)sprintf(buf + n, "%s = %s\n", k->key, v);
        last = k->section;
    }
    return buf;
}
