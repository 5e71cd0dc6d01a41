/* SPDX-License-Identifier: BSD-3-Clause */
/* The registry routes: list, upload, read, patch, delete, export. The
 * router has already checked the id's syntax, so ids here never leave the
 * registry directory. */
#include "serve/internal.h"
#include "tessera/error.h"
#include "tessera/export.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Sends a JSON text we already have (registry answers are text). */
static void json_text(serve_req_t *r, int status, char *text)
{
    if (!text) {
        serve_fail(r, 500, "reading the registry failed");
        return;
    }
    serve_text(r, status, "application/json", text, strlen(text));
}

static void list(serve_req_t *r)
{
    tsr_registry_t *reg = r->s->registry;
    const char *tag, *status, *name;
    if (serve_query(r, "tag", &tag) || serve_query(r, "status", &status) || serve_query(r, "name", &name))
        return;
    char *arr = tsr_registry_list_json(reg, name, tag, status);
    if (!arr) {
        serve_fail(r, 500, "listing the registry failed");
        return;
    }
    size_t n = strlen(arr);
    char *out = malloc(n + 16);
    if (out) {
        memcpy(out, "{\"models\":", 10);
        memcpy(out + 10, arr, n);
        memcpy(out + 10 + n, "}", 2);
    }
    free(arr);
    json_text(r, 200, out);
}

/* Why a model file was refused (tsr_model_load_max's message, which starts
 * with the file's name), without the server's name for the file. */
static const char *reason(const char *path)
{
    const char *m = tsr_last_error();
    size_t n = strlen(path);
    if (strncmp(m, path, n) == 0 && m[n] == ':')
        m += n + 1;
    while (*m == ' ')
        m++;
    return strstr(m, path) ? "the model file is not valid" : m;
}

static void upload(serve_req_t *r)
{
    static const unsigned char hdf5_sig[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
    char id[TSR_REGISTRY_ID_MAX];
    int ok = fsync(r->upload_fd) == 0;
    close(r->upload_fd);
    r->upload_fd = -1;
    if (!ok) {
        serve_error(r, 500, "storing the upload failed");
        return;
    }
    const char *name;
    if (serve_query(r, "name", &name))
        return;
    if (r->len == 0) {
        serve_error(r, 400, "empty upload: send an HDF5 model file as the request body");
        return;
    }
    if (r->len < sizeof hdf5_sig || memcmp(r->magic, hdf5_sig, sizeof hdf5_sig) != 0) {
        serve_error(r, 415, "the upload is not an HDF5 file; expected a tessera model file (.h5)");
        return;
    }
    char *path = r->upload_path;
    r->upload_path = NULL; /* adopt moves or removes it */
    int rc = tsr_registry_adopt(r->s->registry, path, name && name[0] ? name : "model", "upload", id, sizeof id);
    if (rc == TSR_EDATA)
        serve_error(r, 422, "not registered: %s", reason(path));
    else if (rc)
        serve_fail(r, 500, "not registered: storing the model in the registry failed");
    free(path);
    if (rc)
        return;
    snprintf(r->resp.location, sizeof r->resp.location, "/models/%s", id);
    json_text(r, 201, tsr_registry_get_json(r->s->registry, id));
}

static void patch(serve_req_t *r)
{
    json_error_t je;
    char err[128];
    if (serve_json_text(r->body, r->len, err, sizeof err)) {
        serve_error(r, 400, "%s", err);
        return;
    }
    json_t *p = json_loadb(r->body, r->len, JSON_REJECT_DUPLICATES, &je);
    if (!p) {
        serve_error(r, 400, "malformed JSON: %s (line %d, column %d)", je.text, je.line, je.column);
        return;
    }
    json_decref(p);
    int rc = tsr_registry_update(r->s->registry, r->id, r->body, r->len);
    if (rc == TSR_EDATA)
        serve_error(r, 404, "no model %s", r->id);
    else if (rc == TSR_EINVAL)
        serve_error(r, 422, "%s", tsr_last_error()); /* what is wrong with the patch: no file names */
    else if (rc)
        serve_fail(r, 500, "updating the model's metadata failed");
    else
        json_text(r, 200, tsr_registry_get_json(r->s->registry, r->id));
}

static void export_model(serve_req_t *r)
{
    const char *fmt_s;
    if (serve_query(r, "format", &fmt_s))
        return;
    int fmt = tsr_export_format_parse(fmt_s ? fmt_s : "onnx");
    char path[4096];
    if (fmt < 0) {
        serve_error(r, 400, "format=%.32s: expected onnx or hdf5", fmt_s);
        return;
    }
    if (tsr_registry_model_path(r->s->registry, r->id, path, sizeof path)) {
        serve_error(r, 404, "no model %s", r->id);
        return;
    }
    if (fmt == TSR_EXPORT_HDF5) {
        /* Not blocking on, nor sending, anything but a regular file. */
        int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
            if (fd >= 0)
                close(fd);
            serve_error(r, fd < 0 && errno == ENOENT ? 404 : 500,
                        fd < 0 && errno == ENOENT ? "no model %s" : "the model file of %s is not a regular file",
                        r->id);
            return;
        }
        r->resp.fd = fd;
        r->resp.fd_len = (uint64_t)st.st_size;
        r->resp.status = 200;
        r->resp.ctype = "application/x-hdf5";
        snprintf(r->resp.disposition, sizeof r->resp.disposition, "attachment; filename=\"%s.h5\"", r->id);
        return;
    }
    tsr_model_t *m = NULL;
    unsigned char *buf = NULL;
    size_t len = 0;
    if (tsr_model_load_max(path, 1, r->s->cfg.max_model_params, &m) || tsr_export_onnx_buffer(m, r->id, &buf, &len)) {
        tsr_model_destroy(m);
        serve_fail(r, 500, "export failed: the registered model file cannot be read");
        return;
    }
    tsr_model_destroy(m);
    serve_text(r, 200, "application/octet-stream", (char *)buf, len);
    snprintf(r->resp.disposition, sizeof r->resp.disposition, "attachment; filename=\"%s.onnx\"", r->id);
}

void serve_route_models(serve_req_t *r)
{
    tsr_registry_t *reg = r->s->registry;
    if (r->route == RT_MODELS) {
        if (r->method == M_POST)
            upload(r);
        else
            list(r);
        return;
    }
    if (!tsr_registry_exists(reg, r->id)) {
        serve_error(r, 404, "no model %s", r->id);
        return;
    }
    if (r->route == RT_EXPORT) {
        export_model(r);
    } else if (r->method == M_PATCH) {
        patch(r);
    } else if (r->method == M_DELETE) {
        if (tsr_registry_remove(reg, r->id))
            serve_error(r, 404, "no model %s", r->id);
        else
            serve_json(r, 200, json_pack("{s:s}", "deleted", r->id));
    } else {
        json_text(r, 200, tsr_registry_get_json(reg, r->id)); /* it exists: NULL is a damaged entry */
    }
}
