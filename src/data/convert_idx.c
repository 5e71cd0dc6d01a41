/* SPDX-License-Identifier: BSD-3-Clause */
/* IDX (the MNIST format, plain or gzip) -> tessera dataset: uint8 images
 * become /X [N, rows*cols] with scale 1/255, uint8 labels become int32 /y.
 * Format: big-endian magic 0x00000803 (unsigned bytes, 3 dimensions) for
 * images or 0x00000801 (1 dimension) for labels, then one big-endian uint32
 * per dimension, then the bytes. */
#include "tessera/data.h"

#include "common/fileutil.h"
#include "common/h5io.h"
#include "tessera/error.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#define IDX_IMAGES 0x00000803u
#define IDX_LABELS 0x00000801u

typedef struct idx {
    const char *path;
    gzFile gz;
    uint64_t off; /* bytes read so far (uncompressed) */
} idx_t;

/* Reads up to n bytes; returns how many (short only at end of data), or
 * <0 with the message set on a read error or corrupt gzip data. */
static int64_t read_some(idx_t *f, void *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        size_t want = n - got;
        if (want > (size_t)1 << 30)
            want = (size_t)1 << 30;
        int r = gzread(f->gz, (char *)buf + got, (unsigned)want);
        if (r < 0) {
            int err;
            const char *msg = gzerror(f->gz, &err);
            return tsr_error_set(TSR_EDATA, "%s: cannot read at offset %llu: %s", f->path,
                                 (unsigned long long)(f->off + got), err == Z_ERRNO ? strerror(errno) : msg);
        }
        if (r == 0) {
            /* End of data; a gzip stream cut short shows up here too. */
            int err;
            const char *msg = gzerror(f->gz, &err);
            if (err != Z_OK)
                return tsr_error_set(TSR_EDATA, "%s: truncated or corrupt at offset %llu: %s", f->path,
                                     (unsigned long long)(f->off + got), msg);
            break;
        }
        got += (size_t)r;
    }
    f->off += got;
    return (int64_t)got;
}

static int open_idx(idx_t *f, const char *path)
{
    f->path = path;
    f->off = 0;
    f->gz = NULL;
    int rc = tsr_file_check_input(path, "an IDX file, plain or gzip");
    if (rc)
        return rc;
    errno = 0;
    f->gz = gzopen(path, "rb");
    if (!f->gz)
        return tsr_error_set(TSR_EIO, "%s: cannot open: %s", path, errno ? strerror(errno) : "out of memory");
    gzbuffer(f->gz, 256 * 1024);
    return TSR_OK;
}

static void close_idx(idx_t *f)
{
    if (f->gz)
        gzclose(f->gz);
    f->gz = NULL;
}

static uint32_t be32(const unsigned char *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

/* Reads the magic and dims; for images dims = {N, rows, cols}, labels {N}. */
static int read_header(idx_t *f, uint32_t want, uint32_t *dims)
{
    int nd = want == IDX_IMAGES ? 3 : 1;
    unsigned char h[16];
    size_t hlen = 4 + 4 * (size_t)nd;
    int64_t got = read_some(f, h, 4);
    if (got < 0)
        return (int)got;
    if (got < 4)
        return tsr_error_set(TSR_EDATA, "%s: truncated at offset %lld: expected a 4-byte IDX magic number", f->path,
                             (long long)got);
    uint32_t magic = be32(h);
    if (magic != want) {
        const char *what =
            want == IDX_IMAGES ? "IDX images: unsigned bytes, 3 dimensions" : "IDX labels: unsigned bytes, 1 dimension";
        const char *hint = "";
        if (magic == IDX_LABELS && want == IDX_IMAGES)
            hint = " (this looks like a labels file)";
        else if (magic == IDX_IMAGES && want == IDX_LABELS)
            hint = " (this looks like an images file)";
        return tsr_error_set(TSR_EDATA, "%s: bad magic number 0x%08x at offset 0; expected 0x%08x (%s)%s", f->path,
                             (unsigned)magic, (unsigned)want, what, hint);
    }
    got = read_some(f, h + 4, hlen - 4);
    if (got < 0)
        return (int)got;
    if ((size_t)got < hlen - 4)
        return tsr_error_set(TSR_EDATA, "%s: truncated at offset %llu: the header needs %zu bytes", f->path,
                             (unsigned long long)f->off, hlen);
    for (int i = 0; i < nd; i++)
        dims[i] = be32(h + 4 + 4 * i);
    return TSR_OK;
}

/* Reads exactly n bytes of data, then checks the file ends there. */
static int read_body(idx_t *f, unsigned char *buf, size_t n, const char *what)
{
    uint64_t start = f->off;
    int64_t got = read_some(f, buf, n);
    if (got < 0)
        return (int)got;
    if ((size_t)got < n)
        return tsr_error_set(TSR_EDATA,
                             "%s: truncated at offset %llu: expected %llu bytes of %s after the %llu-byte "
                             "header, found %lld",
                             f->path, (unsigned long long)f->off, (unsigned long long)n, what,
                             (unsigned long long)start, (long long)got);
    unsigned char extra;
    got = read_some(f, &extra, 1);
    if (got < 0)
        return (int)got;
    if (got > 0)
        return tsr_error_set(TSR_EDATA, "%s: unexpected data after offset %llu, where the %s should end", f->path,
                             (unsigned long long)(f->off - 1), what);
    return TSR_OK;
}

typedef struct part {
    unsigned char *x;
    int32_t *y;
    uint32_t n, rows, cols;
} part_t;

static int read_part(const char *images, const char *labels, part_t *p)
{
    idx_t fi = {0}, fl = {0};
    uint32_t di[3] = {0}, dl[1] = {0};
    unsigned char *lb = NULL;
    int rc = open_idx(&fi, images);
    if (rc == TSR_OK)
        rc = read_header(&fi, IDX_IMAGES, di);
    if (rc == TSR_OK)
        rc = open_idx(&fl, labels);
    if (rc == TSR_OK)
        rc = read_header(&fl, IDX_LABELS, dl);
    if (rc)
        goto done;
    if (di[0] != dl[0]) {
        rc = tsr_error_set(TSR_EDATA, "%s has %lu images but %s has %lu labels; expected the same number", images,
                           (unsigned long)di[0], labels, (unsigned long)dl[0]);
        goto done;
    }
    if (di[0] == 0 || di[1] == 0 || di[2] == 0) {
        rc = tsr_error_set(TSR_EDATA, "%s: header says %lu images of %lux%lu; expected at least one non-empty image",
                           images, (unsigned long)di[0], (unsigned long)di[1], (unsigned long)di[2]);
        goto done;
    }
    p->n = di[0];
    p->rows = di[1];
    p->cols = di[2];
    uint64_t d = (uint64_t)di[1] * di[2];
    uint64_t bytes = d * di[0];
    if (d > UINT32_MAX || bytes > ((uint64_t)1 << 40)) {
        rc = tsr_error_set(TSR_EDATA, "%s: header says %lu images of %lux%lu, which is implausibly large", images,
                           (unsigned long)di[0], (unsigned long)di[1], (unsigned long)di[2]);
        goto done;
    }
    p->x = malloc((size_t)bytes);
    p->y = malloc((size_t)p->n * sizeof(int32_t));
    lb = malloc(p->n);
    if (!p->x || !p->y || !lb) {
        rc = tsr_error_set(TSR_ENOMEM, "%s: out of memory for %lu images", images, (unsigned long)p->n);
        goto done;
    }
    char what[96];
    snprintf(what, sizeof what, "pixels (%lu images of %lux%lu)", (unsigned long)di[0], (unsigned long)di[1],
             (unsigned long)di[2]);
    rc = read_body(&fi, p->x, (size_t)bytes, what);
    if (rc == TSR_OK) {
        snprintf(what, sizeof what, "labels (%lu of them)", (unsigned long)dl[0]);
        rc = read_body(&fl, lb, p->n, what);
    }
    if (rc == TSR_OK)
        for (uint32_t i = 0; i < p->n; i++)
            p->y[i] = lb[i];
done:
    close_idx(&fi);
    close_idx(&fl);
    free(lb);
    return rc;
}

static int write_part(hid_t f, const char *xn, const char *yn, const part_t *p)
{
    hsize_t xd[2] = {p->n, (hsize_t)p->rows * p->cols}, yd[1] = {p->n};
    size_t xbytes = (size_t)p->n * p->rows * p->cols;
    int rc = tsr_h5w_dataset(f, xn, H5T_STD_U8LE, 2, xd, H5T_NATIVE_UINT8, p->x, xbytes <= TSR_H5W_COMPRESS_MAX_BYTES);
    if (rc == TSR_OK)
        rc = tsr_h5w_attr_float(f, xn, "scale", 1.0f / 255.0f);
    if (rc == TSR_OK)
        rc = tsr_h5w_attr_int64(f, xn, "image_rows", p->rows);
    if (rc == TSR_OK)
        rc = tsr_h5w_attr_int64(f, xn, "image_cols", p->cols);
    if (rc == TSR_OK)
        rc = tsr_h5w_dataset(f, yn, H5T_STD_I32LE, 1, yd, H5T_NATIVE_INT32, p->y,
                             (size_t)p->n * sizeof(int32_t) <= TSR_H5W_COMPRESS_MAX_BYTES);
    return rc;
}

int tsr_data_convert_idx(const char *images, const char *labels, const char *test_images, const char *test_labels,
                         const char *out)
{
    if (!images || !images[0] || !labels || !labels[0] || !out || !out[0])
        return tsr_error_set(TSR_EINVAL, "data convert: IDX images, labels and an output file must be given");
    if (!test_images != !test_labels)
        return tsr_error_set(TSR_EINVAL, "data convert: give both IDX test images and test labels, or neither");
    const char *ins[4] = {images, labels, test_images, test_labels};
    int rc = tsr_file_check_output(out, ins, 4);
    if (rc)
        return rc;

    part_t tr = {0}, te = {0};
    char tmp[4096] = "";
    char *source = NULL;
    hid_t f = H5I_INVALID_HID;
    rc = read_part(images, labels, &tr);
    if (rc == TSR_OK && test_images) {
        rc = read_part(test_images, test_labels, &te);
        if (rc == TSR_OK && (te.rows != tr.rows || te.cols != tr.cols))
            rc = tsr_error_set(TSR_EDATA, "%s has %lux%lu images but %s has %lux%lu; expected the same size",
                               test_images, (unsigned long)te.rows, (unsigned long)te.cols, images,
                               (unsigned long)tr.rows, (unsigned long)tr.cols);
    }
    if (rc)
        goto done;

    size_t slen = strlen(images) + strlen(labels) + (test_images ? strlen(test_images) + strlen(test_labels) : 0) + 8;
    source = malloc(slen);
    if (!source) {
        rc = tsr_error_set(TSR_ENOMEM, "%s: out of memory", out);
        goto done;
    }
    if (test_images)
        snprintf(source, slen, "%s, %s, %s, %s", images, labels, test_images, test_labels);
    else
        snprintf(source, slen, "%s, %s", images, labels);

    rc = tsr_h5w_create_tmp(out, tmp, sizeof tmp, &f);
    if (rc == TSR_OK)
        rc = write_part(f, "X", "y", &tr);
    if (rc == TSR_OK && test_images)
        rc = write_part(f, "X_test", "y_test", &te);
    if (rc == TSR_OK)
        rc = tsr_h5w_root_attrs(f, "tessera-dataset", source);
    rc = tsr_h5w_finish(f, tmp, out, rc);
done:
    free(source);
    free(tr.x);
    free(tr.y);
    free(te.x);
    free(te.y);
    return rc;
}
