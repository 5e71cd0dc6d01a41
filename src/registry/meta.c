/* SPDX-License-Identifier: BSD-3-Clause */
/* Registry metadata: what a new entry records, how PATCH changes it, and
 * writing it whole or not at all. */
#include "registry/internal.h"
#include "common/fileutil.h"
#include "common/h5io.h"
#include "common/h5lock.h"
#include "tessera/error.h"

#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

const char *const tsr_registry_statuses[] = {"registered", "staging", "production", "archived", NULL};

enum { MAX_TAGS = 32, MAX_TAG_LEN = 64, MAX_META_KEYS = 64, MAX_TEXT = 4096 };

/* A text attribute of the model file's root, or "" (under the HDF5 lock). */
static void root_attr(hid_t f, const char *name, char *buf, size_t len)
{
    if (tsr_h5_attr_get_str(f, name, buf, len) != 0)
        buf[0] = '\0';
}

static void now_iso(char *buf, size_t len)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    gmtime_r(&tv.tv_sec, &tm);
    size_t n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, len - n, ".%06ldZ", (long)tv.tv_usec); /* microseconds: registrations sort in order */
}

json_t *reg_meta_new(const char *id, const char *name, long version, const char *source, const char *model_file,
                     const tsr_model_t *m)
{
    char when[48], created[64], acc[64], *spec = malloc(65536);
    const tsr_model_spec_t *s = tsr_model_spec(m);
    now_iso(when, sizeof when);
    tsr_h5_lock();
    hid_t f = H5Fopen(model_file, H5F_ACC_RDONLY, H5P_DEFAULT);
    created[0] = acc[0] = '\0';
    if (f >= 0) {
        root_attr(f, "created", created, sizeof created);
        root_attr(f, "test_accuracy", acc, sizeof acc);
        H5Fclose(f);
    }
    tsr_h5_unlock();
    struct stat st;
    json_t *meta = json_object();
    json_object_set_new(meta, "id", json_string(id));
    json_object_set_new(meta, "name", json_string(name));
    json_object_set_new(meta, "version", json_integer(version));
    json_object_set_new(meta, "status", json_string(tsr_registry_statuses[0]));
    json_object_set_new(meta, "tags", json_array());
    json_object_set_new(meta, "description", json_string(""));
    json_object_set_new(meta, "metadata", json_object());
    json_object_set_new(meta, "registered", json_string(when));
    json_object_set_new(meta, "created", created[0] ? json_string(created) : json_null());
    json_object_set_new(meta, "source", source ? json_string(source) : json_null());
    json_object_set_new(meta, "inputs", json_integer((json_int_t)tsr_model_input_size(m)));
    json_object_set_new(meta, "outputs", json_integer((json_int_t)tsr_model_output_size(m)));
    json_object_set_new(meta, "parameters", json_integer((json_int_t)tsr_model_nparams(m)));
    json_object_set_new(meta, "bytes", json_integer(stat(model_file, &st) == 0 ? (json_int_t)st.st_size : 0));
    char *end = NULL;
    double a = acc[0] ? strtod(acc, &end) : NAN;
    json_object_set_new(meta, "test_accuracy", isfinite(a) && end && !*end ? json_real(a) : json_null());
    json_t *js = spec && tsr_model_spec_json(s, spec, 65536) > 0 ? json_loads(spec, 0, NULL) : NULL;
    free(spec);
    json_object_set_new(meta, "spec", js ? js : json_null());
    return meta;
}

static int tag_ok(const char *t)
{
    size_t n = strlen(t);
    if (n == 0 || n > MAX_TAG_LEN)
        return 0;
    for (const char *p = t; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || strchr("._:-", *p)))
            return 0;
    return 1;
}

static int patch_tags(json_t *meta, json_t *tags)
{
    if (!json_is_array(tags) || json_array_size(tags) > MAX_TAGS)
        return tsr_error_set(TSR_EINVAL, "\"tags\" must be an array of at most %d strings", MAX_TAGS);
    size_t i;
    json_t *t;
    json_array_foreach(tags, i, t)
    {
        if (!json_is_string(t) || !tag_ok(json_string_value(t)))
            return tsr_error_set(TSR_EINVAL, "tag %zu: expected 1 to %d characters from [A-Za-z0-9._:-]", i,
                                 MAX_TAG_LEN);
    }
    json_object_set(meta, "tags", tags);
    return TSR_OK;
}

static int patch_metadata(json_t *meta, json_t *obj)
{
    if (!json_is_object(obj))
        return tsr_error_set(TSR_EINVAL, "\"metadata\" must be an object");
    json_t *cur = json_object_get(meta, "metadata");
    if (!json_is_object(cur)) {
        cur = json_object();
        json_object_set_new(meta, "metadata", cur);
    }
    const char *k;
    json_t *v;
    json_object_foreach(obj, k, v)
    {
        if (strlen(k) == 0 || strlen(k) > 128)
            return tsr_error_set(TSR_EINVAL, "metadata keys must be 1 to 128 bytes");
        if (json_is_null(v)) {
            json_object_del(cur, k);
            continue;
        }
        if (!json_is_string(v) && !json_is_number(v) && !json_is_boolean(v))
            return tsr_error_set(TSR_EINVAL, "metadata \"%s\": values must be strings, numbers, booleans or null", k);
        if (json_is_string(v) && json_string_length(v) > MAX_TEXT)
            return tsr_error_set(TSR_EINVAL, "metadata \"%s\": longer than %d bytes", k, MAX_TEXT);
        json_object_set(cur, k, v);
    }
    if (json_object_size(cur) > MAX_META_KEYS)
        return tsr_error_set(TSR_EINVAL, "metadata: more than %d keys", MAX_META_KEYS);
    return TSR_OK;
}

int reg_meta_patch(json_t *meta, const char *patch, size_t len)
{
    json_error_t err;
    /* Bounded nesting: a patch is flat, and jansson recurses per level. */
    int depth = 0, instr = 0;
    for (size_t i = 0; i < len; i++) {
        char ch = patch[i];
        if (instr) {
            if (ch == '\\')
                i++;
            else if (ch == '"')
                instr = 0;
        } else if (ch == '"') {
            instr = 1;
        } else if ((ch == '{' || ch == '[') && ++depth > 8) {
            return tsr_error_set(TSR_EINVAL, "JSON nested deeper than 8 levels");
        } else if (ch == '}' || ch == ']') {
            depth--;
        }
    }
    json_t *p = json_loadb(patch, len, JSON_REJECT_DUPLICATES, &err);
    if (!p)
        return tsr_error_set(TSR_EINVAL, "malformed JSON: %s (line %d, column %d)", err.text, err.line, err.column);
    int rc = TSR_OK;
    const char *k;
    json_t *v;
    json_t *work = json_deep_copy(meta); /* all or nothing */
    if (!json_is_object(p)) {
        rc = tsr_error_set(TSR_EINVAL, "expected a JSON object with description, tags, status or metadata");
        goto out;
    }
    json_object_foreach(p, k, v)
    {
        if (strcmp(k, "tags") == 0) {
            rc = patch_tags(work, v);
        } else if (strcmp(k, "metadata") == 0) {
            rc = patch_metadata(work, v);
        } else if (strcmp(k, "description") == 0) {
            if (!json_is_string(v) || json_string_length(v) > MAX_TEXT)
                rc = tsr_error_set(TSR_EINVAL, "\"description\" must be a string of at most %d bytes", MAX_TEXT);
            else
                json_object_set(work, "description", v);
        } else if (strcmp(k, "status") == 0) {
            int ok = 0;
            for (int i = 0; json_is_string(v) && tsr_registry_statuses[i]; i++)
                ok |= strcmp(json_string_value(v), tsr_registry_statuses[i]) == 0;
            if (!ok)
                rc = tsr_error_set(TSR_EINVAL, "\"status\" must be registered, staging, production or archived");
            else
                json_object_set(work, "status", v);
        } else {
            rc =
                tsr_error_set(TSR_EINVAL, "unknown field \"%.64s\"; expected description, tags, status or metadata", k);
        }
        if (rc)
            goto out;
    }
    json_object_update(meta, work);
out:
    json_decref(work);
    json_decref(p);
    return rc;
}

int reg_meta_write(const char *path, json_t *meta)
{
    char *text = json_dumps(meta, JSON_INDENT(2) | JSON_SORT_KEYS | JSON_REAL_PRECISION(10));
    if (!text)
        return tsr_error_set(TSR_ENOMEM, "registry: out of memory for %s", path);
    int rc = tsr_file_write_atomic(path, text, strlen(text));
    free(text);
    return rc;
}

int reg_json_read(const char *path, int missing_ok, json_t **out)
{
    enum { MAX_FILE = 1 << 20 };
    *out = NULL;
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT)
        return missing_ok ? TSR_OK : tsr_error_set(TSR_EDATA, "registry: %s does not exist", path);
    if (fd < 0)
        return tsr_error_set(TSR_EIO, "registry: %s: %s", path,
                             errno == ELOOP ? "a symbolic link, not a regular file" : strerror(errno));
    struct stat st;
    char *buf = NULL;
    int rc = TSR_OK;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > MAX_FILE)
        rc = tsr_error_set(TSR_EIO, "registry: %s: not a regular file of at most %d bytes", path, MAX_FILE);
    else if (!(buf = malloc((size_t)st.st_size + 1)))
        rc = tsr_error_set(TSR_ENOMEM, "registry: out of memory for %s", path);
    size_t n = 0;
    while (rc == TSR_OK && n < (size_t)st.st_size) {
        ssize_t got = read(fd, buf + n, (size_t)st.st_size - n);
        if (got <= 0 && !(got < 0 && errno == EINTR))
            rc = tsr_error_set(TSR_EIO, "registry: %s: read failed", path);
        n += got > 0 ? (size_t)got : 0;
    }
    close(fd);
    json_error_t je;
    if (rc == TSR_OK && !(*out = json_loadb(buf, n, 0, &je)))
        rc = tsr_error_set(TSR_EDATA, "registry: %s: %s", path, je.text);
    free(buf);
    return rc;
}
