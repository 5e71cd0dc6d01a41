/* SPDX-License-Identifier: BSD-3-Clause */
/* The registry directory: ids, adding, listing, updating and removing. */
#include "registry/internal.h"
#include "common/fileutil.h"
#include "tessera/error.h"
#include "tessera/log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

enum { NAME_MAX_LEN = 64 };

/* Uploads a killed coordinator left behind (.upload.XXXXXX). Only old
 * ones: another coordinator on the same directory may be receiving one. */
static void remove_stale_uploads(const char *dir)
{
    enum { STALE_SECONDS = 3600 };
    DIR *d = opendir(dir);
    struct dirent *e;
    time_t now = time(NULL);
    if (!d)
        return;
    while ((e = readdir(d))) {
        struct stat st;
        char path[4096];
        if (strncmp(e->d_name, ".upload.", 8) != 0 ||
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name) >= (int)sizeof path)
            continue;
        if (lstat(path, &st) == 0 && S_ISREG(st.st_mode) && now - st.st_mtime > STALE_SECONDS && unlink(path) == 0)
            tsr_log(TSR_LOG_INFO, "registry: removed %s, an upload left by a coordinator that stopped", path);
    }
    closedir(d);
}

int tsr_registry_create(const char *dir, tsr_registry_t **out)
{
    if (!dir || !dir[0])
        return tsr_error_set(TSR_EINVAL, "registry: empty directory name");
    tsr_registry_t *r = calloc(1, sizeof *r);
    if (!r || !(r->dir = strdup(dir))) {
        free(r);
        return tsr_error_set(TSR_ENOMEM, "registry: out of memory");
    }
    pthread_mutex_init(&r->mu, NULL);
    remove_stale_uploads(dir);
    *out = r;
    return TSR_OK;
}

void tsr_registry_destroy(tsr_registry_t *r)
{
    if (!r)
        return;
    pthread_mutex_destroy(&r->mu);
    free(r->dir);
    free(r);
}

void tsr_registry_set_max_params(tsr_registry_t *r, size_t max_params) { r->max_params = max_params; }

const char *tsr_registry_dir(const tsr_registry_t *r) { return r->dir; }

static int id_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
           c == '-';
}

/* No '/', no leading '.', nothing but [A-Za-z0-9._-]: always a plain name
 * inside the directory, never "..", never a hidden temporary file. */
int tsr_registry_id_valid(const char *id)
{
    size_t n = id ? strlen(id) : 0;
    if (n == 0 || n >= TSR_REGISTRY_ID_MAX || id[0] == '.' || id[0] == '-')
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!id_char(id[i]))
            return 0;
    return 1;
}

static int file_of(const tsr_registry_t *r, const char *id, const char *ext, char *buf, size_t len)
{
    if (!tsr_registry_id_valid(id))
        return tsr_error_set(TSR_EINVAL, "registry: invalid model id");
    int n = snprintf(buf, len, "%s/%s%s", r->dir, id, ext);
    if (n < 0 || (size_t)n >= len)
        return tsr_error_set(TSR_EINVAL, "registry: path too long");
    return TSR_OK;
}

int tsr_registry_exists(tsr_registry_t *r, const char *id)
{
    char p[4096];
    return file_of(r, id, ".json", p, sizeof p) == TSR_OK && access(p, F_OK) == 0;
}

int tsr_registry_tmpfile(tsr_registry_t *r, char *buf, size_t len)
{
    int rc = tsr_mkdir_p(r->dir);
    if (rc)
        return rc;
    int n = snprintf(buf, len, "%s/.upload.XXXXXX", r->dir);
    if (n < 0 || (size_t)n >= len)
        return tsr_error_set(TSR_EINVAL, "registry: path too long");
    int fd = mkstemp(buf);
    if (fd < 0)
        return tsr_error_set(TSR_EIO, "registry: cannot create a file in %s: %s", r->dir, strerror(errno));
    fchmod(fd, 0644); /* mkstemp's 0600 would hide registered models from the rest of a shared project */
    return fd;
}

/* name with every character outside [A-Za-z0-9._-] made '-', trimmed. */
static void slug(const char *name, char *out)
{
    size_t n = 0;
    for (const char *p = name; *p && n < NAME_MAX_LEN; p++)
        out[n++] = id_char(*p) ? *p : '-';
    out[n] = '\0';
    while (out[0] == '.' || out[0] == '-')
        memmove(out, out + 1, strlen(out));
    if (!out[0])
        strcpy(out, "model");
}

/* Moves tmp (a validated model file in the directory) to a fresh id. */
static int enter(tsr_registry_t *r, const char *tmp, const char *name_in, const char *source, const tsr_model_t *m,
                 char *id, size_t idlen)
{
    char name[NAME_MAX_LEN + 1], myid[TSR_REGISTRY_ID_MAX], h5[4096], js[4096];
    slug(name_in, name);
    long v = 0;
    pthread_mutex_lock(&r->mu);
    int rc = reg_next_version(r, name, &v);
    for (int tries = 0; rc == TSR_OK && tries < 1000; tries++, v++) {
        snprintf(myid, sizeof myid, "%s-v%ld", name, v);
        if ((rc = file_of(r, myid, ".h5", h5, sizeof h5)) || (rc = file_of(r, myid, ".json", js, sizeof js)))
            break;
        /* link(2) fails if the name is taken, so another process cannot get the same id. */
        if (link(tmp, h5) == 0)
            break;
        if (errno != EEXIST) {
            rc = tsr_error_set(TSR_EIO, "registry: %s: %s", h5, strerror(errno));
            break;
        }
        if (tries == 999)
            rc = tsr_error_set(TSR_EIO, "registry: no free version for %s", name);
    }
    /* Recorded before the entry appears, so no later entry can take its id. */
    if (rc == TSR_OK && (rc = reg_version_used(r, name, v)))
        unlink(h5);
    if (rc == TSR_OK) {
        json_t *meta = reg_meta_new(myid, name, v, source, h5, m);
        rc = reg_meta_write(js, meta);
        json_decref(meta);
        if (rc)
            unlink(h5);
    }
    pthread_mutex_unlock(&r->mu);
    unlink(tmp);
    if (rc == TSR_OK && id && snprintf(id, idlen, "%s", myid) >= (int)idlen)
        return tsr_error_set(TSR_EINVAL, "registry: id buffer too small");
    return rc;
}

int tsr_registry_adopt(tsr_registry_t *r, const char *path, const char *name, const char *source, char *id,
                       size_t idlen)
{
    tsr_model_t *m = NULL;
    int rc = tsr_model_load_max(path, 1, r->max_params, &m);
    if (rc) {
        unlink(path);
        return rc;
    }
    rc = enter(r, path, name ? name : "model", source, m, id, idlen);
    tsr_model_destroy(m);
    return rc;
}

int tsr_registry_add(tsr_registry_t *r, const char *path, const char *name, char *id, size_t idlen)
{
    char tmp[4096], base[256], src[4096];
    tsr_model_t *m = NULL;
    int rc =
        tsr_model_load_max(path, 1, r->max_params, &m); /* refuse what is not a model before touching the registry */
    if (rc)
        return rc;
    if (!name) {
        snprintf(src, sizeof src, "%s", path);
        snprintf(base, sizeof base, "%s", basename(src));
        char *dot = strrchr(base, '.');
        if (dot && dot != base)
            *dot = '\0';
        name = base;
    }
    int fd = tsr_registry_tmpfile(r, tmp, sizeof tmp);
    if (fd < 0) {
        tsr_model_destroy(m);
        return fd;
    }
    rc = tsr_file_copy_to_fd(path, fd);
    if (rc == TSR_OK && fsync(fd) != 0)
        rc = tsr_error_set(TSR_EIO, "registry: fsync failed: %s", strerror(errno));
    close(fd);
    if (rc == TSR_OK) {
        if (!realpath(path, src))
            snprintf(src, sizeof src, "%s", path);
        rc = enter(r, tmp, name, src, m, id, idlen);
    } else {
        unlink(tmp);
    }
    tsr_model_destroy(m);
    return rc;
}

static int by_registered(const void *a, const void *b)
{
    json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
    const char *rx = json_string_value(json_object_get(x, "registered")),
               *ry = json_string_value(json_object_get(y, "registered"));
    int c = strcmp(rx ? rx : "", ry ? ry : "");
    return c ? c : strcmp(json_string_value(json_object_get(x, "id")), json_string_value(json_object_get(y, "id")));
}

static int matches(json_t *m, const char *name, const char *tag, const char *status)
{
    const char *n = json_string_value(json_object_get(m, "name")), *s = json_string_value(json_object_get(m, "status"));
    if (!json_is_string(json_object_get(m, "id")))
        return 0;
    if ((name && (!n || strcmp(n, name))) || (status && (!s || strcmp(s, status))))
        return 0;
    if (!tag)
        return 1;
    size_t i;
    json_t *t;
    json_array_foreach(json_object_get(m, "tags"), i, t)
    {
        if (json_is_string(t) && strcmp(json_string_value(t), tag) == 0)
            return 1;
    }
    return 0;
}

/* Every matching entry, sorted oldest first, as a new array. */
static json_t *collect(tsr_registry_t *r, const char *name, const char *tag, const char *status)
{
    json_t *all = json_array();
    DIR *d = opendir(r->dir);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (n < 6 || strcmp(e->d_name + n - 5, ".json") != 0 || e->d_name[0] == '.')
            continue;
        char id[TSR_REGISTRY_ID_MAX], p[4096];
        if (n - 5 >= sizeof id)
            continue;
        snprintf(id, sizeof id, "%.*s", (int)(n - 5), e->d_name);
        if (file_of(r, id, ".json", p, sizeof p))
            continue;
        json_t *m = NULL;
        reg_json_read(p, 0, &m); /* one unreadable entry does not hide the others */
        if (m && matches(m, name, tag, status))
            json_array_append(all, m);
        json_decref(m);
    }
    if (d)
        closedir(d);
    size_t n = json_array_size(all);
    json_t **v = malloc((n ? n : 1) * sizeof *v);
    for (size_t i = 0; v && i < n; i++)
        v[i] = json_incref(json_array_get(all, i));
    if (v) {
        qsort(v, n, sizeof *v, by_registered);
        json_array_clear(all);
        for (size_t i = 0; i < n; i++)
            json_array_append_new(all, v[i]);
        free(v);
    }
    return all;
}

char *tsr_registry_list_json(tsr_registry_t *r, const char *name, const char *tag, const char *status)
{
    json_t *all = collect(r, name, tag, status);
    char *s = json_dumps(all, JSON_COMPACT | JSON_REAL_PRECISION(10));
    json_decref(all);
    if (!s)
        tsr_error_set(TSR_ENOMEM, "registry: out of memory");
    return s;
}

int tsr_registry_latest(tsr_registry_t *r, const char *status, char *id, size_t idlen)
{
    json_t *all = collect(r, NULL, NULL, status);
    size_t n = json_array_size(all);
    int rc = n ? TSR_OK
               : tsr_error_set(TSR_EDATA, "registry %s: no model%s%s", r->dir, status ? " with status " : "",
                               status ? status : "");
    if (n)
        snprintf(id, idlen, "%s", json_string_value(json_object_get(json_array_get(all, n - 1), "id")));
    json_decref(all);
    return rc;
}

char *tsr_registry_get_json(tsr_registry_t *r, const char *id)
{
    char p[4096];
    if (file_of(r, id, ".json", p, sizeof p))
        return NULL;
    json_t *m = NULL;
    if (reg_json_read(p, 0, &m))
        return NULL;
    char *s = json_dumps(m, JSON_COMPACT | JSON_REAL_PRECISION(10));
    json_decref(m);
    return s;
}

int tsr_registry_update(tsr_registry_t *r, const char *id, const char *patch, size_t len)
{
    char p[4096];
    int rc = file_of(r, id, ".json", p, sizeof p);
    if (rc)
        return rc;
    pthread_mutex_lock(&r->mu);
    json_t *m = NULL;
    if ((rc = reg_json_read(p, 0, &m)) == TSR_OK && (rc = reg_meta_patch(m, patch, len)) == TSR_OK)
        rc = reg_meta_write(p, m);
    json_decref(m);
    pthread_mutex_unlock(&r->mu);
    return rc;
}

int tsr_registry_remove(tsr_registry_t *r, const char *id)
{
    char js[4096], h5[4096], name[TSR_REGISTRY_ID_MAX];
    long version;
    int rc = file_of(r, id, ".json", js, sizeof js);
    if (rc || (rc = file_of(r, id, ".h5", h5, sizeof h5)))
        return rc;
    pthread_mutex_lock(&r->mu);
    /* The version stays taken (entries registered before .versions existed
     * are recorded here), then metadata goes before the model file: a
     * listing never shows an entry whose file is gone. */
    if (access(js, F_OK) != 0)
        rc = tsr_error_set(TSR_EDATA, "registry: no model '%s'", id);
    else if (reg_id_split(id, name, sizeof name, &version) == TSR_OK && (rc = reg_version_used(r, name, version)))
        tsr_error_prefix(rc, "registry: %s not removed: ", id);
    else if (unlink(js) != 0)
        rc = errno == ENOENT ? tsr_error_set(TSR_EDATA, "registry: no model '%s'", id)
                             : tsr_error_set(TSR_EIO, "registry: %s: %s", js, strerror(errno));
    else
        unlink(h5);
    pthread_mutex_unlock(&r->mu);
    return rc;
}

int tsr_registry_model_path(tsr_registry_t *r, const char *id, char *buf, size_t len)
{
    int rc = file_of(r, id, ".h5", buf, len);
    if (rc)
        return rc;
    if (!tsr_registry_exists(r, id) || access(buf, R_OK) != 0)
        return tsr_error_set(TSR_EDATA, "registry: no model '%s'", id);
    return TSR_OK;
}
