/* SPDX-License-Identifier: BSD-3-Clause */
/* Model versions are never reused: the highest version each name ever had
 * is kept in <dir>/.versions (a JSON object, written atomically), so an id
 * that was deleted, even before a restart, is not handed out again. Files
 * of the directory are also counted, for registries older than the file.
 * Callers hold the registry's mutex; between processes sharing a directory
 * link(2) keeps ids unique and the file only ever grows (max of both). */
#include "registry/internal.h"
#include "common/fileutil.h"
#include "tessera/error.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char versions_file[] = ".versions";

/* The recorded versions, or an empty object when there is no file yet. */
static int versions_read(const tsr_registry_t *r, char *path, size_t len, json_t **out)
{
    int n = snprintf(path, len, "%s/%s", r->dir, versions_file);
    if (n < 0 || (size_t)n >= len)
        return tsr_error_set(TSR_EINVAL, "registry: path too long");
    int rc = reg_json_read(path, 1, out);
    if (rc == TSR_OK && !*out && !(*out = json_object()))
        rc = tsr_error_set(TSR_ENOMEM, "registry: out of memory");
    if (rc == TSR_OK && !json_is_object(*out)) {
        json_decref(*out);
        rc = tsr_error_set(TSR_EIO, "registry: %s is not a JSON object", path);
    }
    /* A damaged registry is the server's trouble, never the client's data. */
    return rc == TSR_EDATA ? TSR_EIO : rc;
}

/* The highest version of name among the directory's files. */
static long highest_file(const tsr_registry_t *r, const char *name)
{
    long best = 0;
    size_t nl = strlen(name);
    DIR *d = opendir(r->dir);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        const char *s = e->d_name;
        if (strncmp(s, name, nl) != 0 || strncmp(s + nl, "-v", 2) != 0)
            continue;
        char *end;
        long v = strtol(s + nl + 2, &end, 10);
        if (end != s + nl + 2 && (strcmp(end, ".h5") == 0 || strcmp(end, ".json") == 0) && v > best)
            best = v;
    }
    if (d)
        closedir(d);
    return best;
}

int reg_next_version(const tsr_registry_t *r, const char *name, long *out)
{
    char path[4096];
    json_t *vers = NULL;
    int rc = versions_read(r, path, sizeof path, &vers);
    if (rc)
        return rc;
    long seen = (long)json_integer_value(json_object_get(vers, name)), files = highest_file(r, name);
    json_decref(vers);
    *out = (seen > files ? seen : files) + 1;
    return TSR_OK;
}

int reg_version_used(const tsr_registry_t *r, const char *name, long version)
{
    char path[4096];
    json_t *vers = NULL;
    int rc = versions_read(r, path, sizeof path, &vers);
    if (rc)
        return rc;
    if (json_integer_value(json_object_get(vers, name)) < version) {
        json_object_set_new(vers, name, json_integer(version));
        char *text = json_dumps(vers, JSON_INDENT(2) | JSON_SORT_KEYS);
        rc = text ? tsr_file_write_atomic(path, text, strlen(text))
                  : tsr_error_set(TSR_ENOMEM, "registry: out of memory");
        free(text);
    }
    json_decref(vers);
    return rc;
}

int reg_id_split(const char *id, char *name, size_t len, long *version)
{
    const char *v = NULL;
    for (const char *p = strstr(id, "-v"); p; p = strstr(p + 1, "-v"))
        v = p;
    char *end = NULL;
    *version = v ? strtol(v + 2, &end, 10) : 0;
    if (!v || end == v + 2 || *end || (size_t)(v - id) >= len)
        return tsr_error_set(TSR_EINVAL, "registry: '%s' is not NAME-vVERSION", id);
    memcpy(name, id, (size_t)(v - id));
    name[v - id] = '\0';
    return TSR_OK;
}
