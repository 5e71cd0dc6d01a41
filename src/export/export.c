/* SPDX-License-Identifier: BSD-3-Clause */
/* Export entry points: format names, files written atomically. */
#include "tessera/export.h"
#include "common/fileutil.h"
#include "tessera/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int tsr_export_format_parse(const char *name)
{
    if (!name)
        return -1;
    if (strcmp(name, "onnx") == 0)
        return TSR_EXPORT_ONNX;
    if (strcmp(name, "hdf5") == 0 || strcmp(name, "h5") == 0)
        return TSR_EXPORT_HDF5;
    return -1;
}

const char *tsr_export_format_name(tsr_export_format_t fmt) { return fmt == TSR_EXPORT_ONNX ? "onnx" : "hdf5"; }

/* The bytes of buf, or of the file src, to path atomically, or to standard
 * output when path is "-" (a stream cannot be taken back: a reader sees
 * what was written before a failure). */
static int write_out(const char *path, const unsigned char *buf, size_t len, const char *src)
{
    if (strcmp(path, "-") != 0)
        return buf ? tsr_file_write_atomic(path, buf, len) : tsr_file_copy_atomic(src, path);
    int rc = buf ? tsr_file_write_all(STDOUT_FILENO, buf, len) : tsr_file_copy_to_fd(src, STDOUT_FILENO);
    return rc ? tsr_error_prefix(rc, "standard output: ") : TSR_OK;
}

int tsr_export_onnx(const tsr_model_t *m, const char *name, const char *path)
{
    unsigned char *buf = NULL;
    size_t len = 0;
    int rc = tsr_export_onnx_buffer(m, name, &buf, &len);
    if (rc == TSR_OK)
        rc = write_out(path, buf, len, NULL);
    free(buf);
    return rc;
}

int tsr_export_file(const char *model_path, tsr_export_format_t fmt, const char *out_path)
{
    return tsr_export_file_max(model_path, fmt, out_path, 0);
}

int tsr_export_file_max(const char *model_path, tsr_export_format_t fmt, const char *out_path, size_t max_params)
{
    tsr_model_t *m = NULL;
    const char *in[1] = {model_path};
    int rc = strcmp(out_path, "-") == 0 ? TSR_OK : tsr_file_check_output(out_path, in, 1);
    if (rc == TSR_OK)
        rc = tsr_model_load_max(model_path, 1, max_params, &m);
    if (rc)
        return rc;
    if (fmt == TSR_EXPORT_ONNX) {
        char name[256];
        const char *base = strrchr(model_path, '/');
        snprintf(name, sizeof name, "%s", base ? base + 1 : model_path);
        char *dot = strrchr(name, '.');
        if (dot && dot != name)
            *dot = '\0';
        rc = tsr_export_onnx(m, name, out_path);
    } else {
        rc = write_out(out_path, NULL, 0, model_path);
    }
    tsr_model_destroy(m);
    return rc;
}
