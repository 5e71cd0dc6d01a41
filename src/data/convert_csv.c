/* SPDX-License-Identifier: BSD-3-Clause */
/* CSV (plain or gzip) -> tessera dataset: numeric columns, one of them an
 * integer class label; an optional header row; a seeded test split. */
#include "tessera/data.h"

#include "common/fileutil.h"
#include "common/h5io.h"
#include "tessera/error.h"
#include "tessera/rng.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

/* Stream of the CSV test-split shuffle, so it never coincides with the
 * loader's per-epoch streams (small integers). */
#define CSV_SPLIT_STREAM 0x6373762d73706c74ULL /* "csv-splt" */

typedef struct line_reader {
    gzFile gz;
    char *buf;
    size_t cap, len;
    size_t lineno;
} line_reader_t;

/* Reads one line (without its '\n' or '\r'); 1: got one, 0: end of file,
 * <0: error (message set). */
static int read_line(line_reader_t *lr, const char *path)
{
    lr->len = 0;
    for (;;) {
        if (lr->cap - lr->len < 2) {
            size_t ncap = lr->cap ? lr->cap * 2 : 4096;
            char *nb = realloc(lr->buf, ncap);
            if (!nb)
                return tsr_error_set(TSR_ENOMEM, "%s: out of memory reading line %zu", path, lr->lineno + 1);
            lr->buf = nb;
            lr->cap = ncap;
        }
        size_t room = lr->cap - lr->len;
        if (room > (size_t)1 << 30)
            room = (size_t)1 << 30;
        if (!gzgets(lr->gz, lr->buf + lr->len, (int)room)) {
            int err;
            const char *msg = gzerror(lr->gz, &err);
            if (err != Z_OK)
                return tsr_error_set(TSR_EDATA, "%s: cannot read line %zu: %s", path, lr->lineno + 1,
                                     err == Z_ERRNO ? strerror(errno) : msg);
            if (lr->len == 0)
                return 0;
            break; /* last line without '\n' */
        }
        size_t got = strlen(lr->buf + lr->len);
        lr->len += got;
        if (lr->len > 0 && lr->buf[lr->len - 1] == '\n')
            break;
        if (gzeof(lr->gz))
            break;
    }
    lr->lineno++;
    while (lr->len > 0 && (lr->buf[lr->len - 1] == '\n' || lr->buf[lr->len - 1] == '\r'))
        lr->len--;
    lr->buf[lr->len] = '\0';
    return 1;
}

/* A cell [s, e) trimmed of blanks and one pair of double quotes. */
static void trim(const char **s, const char **e)
{
    while (*s < *e && isspace((unsigned char)**s))
        (*s)++;
    while (*e > *s && isspace((unsigned char)(*e)[-1]))
        (*e)--;
    if (*e - *s >= 2 && **s == '"' && (*e)[-1] == '"') {
        (*s)++;
        (*e)--;
    }
}

/* Parses [s, e) as a finite number; 0 on success. */
static int parse_num(const char *s, const char *e, double *v)
{
    char tmp[128];
    size_t n = (size_t)(e - s);
    if (n == 0 || n >= sizeof tmp)
        return -1;
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    char *end;
    errno = 0;
    double d = strtod(tmp, &end);
    if (end != tmp + n || !isfinite(d))
        return -1;
    *v = d;
    return 0;
}

static size_t count_cells(const char *line)
{
    size_t n = 1;
    for (const char *p = line; *p; p++)
        if (*p == ',')
            n++;
    return n;
}

static int is_blank(const char *line)
{
    for (const char *p = line; *p; p++)
        if (!isspace((unsigned char)*p))
            return 0;
    return 1;
}

/* A first line is a header when at least half of its cells are not
 * numbers ("x1,x2,label"); a data line with one bad cell is an error. */
static int looks_like_header(const char *line)
{
    size_t cells = 0, non = 0;
    const char *s = line;
    for (;;) {
        const char *e = strchr(s, ',');
        if (!e)
            e = s + strlen(s);
        const char *a = s, *b = e;
        trim(&a, &b);
        double v;
        cells++;
        if (parse_num(a, b, &v) != 0)
            non++;
        if (!*e)
            break;
        s = e + 1;
    }
    return non > 0 && non * 2 >= cells;
}

typedef struct table {
    float *x;
    int32_t *y;
    size_t rows, cap, d;
} table_t;

static int grow(table_t *t, const char *path)
{
    size_t ncap = t->cap ? t->cap * 2 : 1024;
    float *nx = realloc(t->x, ncap * t->d * sizeof(float));
    if (!nx)
        return tsr_error_set(TSR_ENOMEM, "%s: out of memory after %zu rows", path, t->rows);
    t->x = nx;
    int32_t *ny = realloc(t->y, ncap * sizeof(int32_t));
    if (!ny)
        return tsr_error_set(TSR_ENOMEM, "%s: out of memory after %zu rows", path, t->rows);
    t->y = ny;
    t->cap = ncap;
    return TSR_OK;
}

/* Parses one data line into row t->rows. */
static int parse_row(table_t *t, const char *path, const char *line, size_t lineno, size_t ncols, size_t lcol,
                     double scale)
{
    if (t->rows == t->cap) {
        int rc = grow(t, path);
        if (rc)
            return rc;
    }
    float *xr = t->x + t->rows * t->d;
    const char *s = line;
    size_t col = 0, xi = 0;
    for (;;) {
        const char *e = strchr(s, ',');
        if (!e)
            e = s + strlen(s);
        if (col >= ncols)
            return tsr_error_set(TSR_EDATA, "%s: line %zu has %zu columns; expected %zu like the first data line", path,
                                 lineno, count_cells(line), ncols);
        const char *a = s, *b = e;
        trim(&a, &b);
        double v;
        if (a == b)
            return tsr_error_set(TSR_EDATA, "%s: line %zu, column %zu (counting from 1) is empty; expected a number",
                                 path, lineno, col + 1);
        if (parse_num(a, b, &v) != 0)
            return tsr_error_set(TSR_EDATA,
                                 "%s: line %zu, column %zu (counting from 1): \"%.*s\" is not a finite "
                                 "number",
                                 path, lineno, col + 1, (int)(b - a > 40 ? 40 : b - a), a);
        if (col == lcol) {
            if (v < 0 || v != floor(v) || v > INT32_MAX)
                return tsr_error_set(TSR_EDATA,
                                     "%s: line %zu, column %zu (counting from 1): label \"%.*s\" is not "
                                     "a non-negative integer; class labels must be 0, 1, 2, ...",
                                     path, lineno, col + 1, (int)(b - a > 40 ? 40 : b - a), a);
            t->y[t->rows] = (int32_t)v;
        } else {
            double sv = v * scale;
            if (!isfinite((float)sv))
                return tsr_error_set(TSR_EDATA,
                                     "%s: line %zu, column %zu (counting from 1): %g is out of float "
                                     "range",
                                     path, lineno, col + 1, sv);
            xr[xi++] = (float)sv;
        }
        col++;
        if (!*e)
            break;
        s = e + 1;
    }
    if (col != ncols)
        return tsr_error_set(TSR_EDATA, "%s: line %zu has %zu columns; expected %zu like the first data line", path,
                             lineno, col, ncols);
    t->rows++;
    return TSR_OK;
}

static int open_input(const char *path, gzFile *gz)
{
    int rc = tsr_file_check_input(path, "a CSV file, plain or gzip");
    if (rc)
        return rc;
    errno = 0;
    *gz = gzopen(path, "rb");
    if (!*gz)
        return tsr_error_set(TSR_EIO, "%s: cannot open: %s", path, errno ? strerror(errno) : "out of memory");
    gzbuffer(*gz, 256 * 1024);
    return TSR_OK;
}

/* Gathers rows idx[0..n) of t into x, y. */
static void take_rows(const table_t *t, const uint32_t *idx, size_t n, float *x, int32_t *y)
{
    for (size_t i = 0; i < n; i++) {
        memcpy(x + i * t->d, t->x + (size_t)idx[i] * t->d, t->d * sizeof(float));
        y[i] = t->y[idx[i]];
    }
}

static int write_split(hid_t f, const char *xn, const char *yn, const float *x, const int32_t *y, size_t n, size_t d)
{
    hsize_t xd[2] = {n, d}, yd[1] = {n};
    int rc = tsr_h5w_dataset(f, xn, H5T_IEEE_F32LE, 2, xd, H5T_NATIVE_FLOAT, x,
                             n * d * sizeof(float) <= TSR_H5W_COMPRESS_MAX_BYTES);
    if (rc == TSR_OK)
        rc = tsr_h5w_dataset(f, yn, H5T_STD_I32LE, 1, yd, H5T_NATIVE_INT32, y,
                             n * sizeof(int32_t) <= TSR_H5W_COMPRESS_MAX_BYTES);
    return rc;
}

int tsr_data_convert_csv_scaled(const char *csv, const char *out, int label_col, double test_fraction, uint64_t seed,
                                double scale)
{
    if (!csv || !csv[0] || !out || !out[0])
        return tsr_error_set(TSR_EINVAL, "data convert: input and output files must be given");
    if (!(test_fraction >= 0 && test_fraction < 1))
        return tsr_error_set(TSR_EINVAL, "data convert: test fraction %g is outside [0, 1)", test_fraction);
    if (!isfinite(scale) || scale == 0)
        return tsr_error_set(TSR_EINVAL, "data convert: scale %g must be a finite, non-zero number", scale);
    if (label_col < -1)
        return tsr_error_set(TSR_EINVAL, "data convert: label column %d is invalid; use 0, 1, ... or -1 for the last",
                             label_col);
    const char *ins[1] = {csv};
    int rc = tsr_file_check_output(out, ins, 1);
    if (rc)
        return rc;

    line_reader_t lr = {0};
    table_t t = {0};
    float *xtr = NULL, *xte = NULL;
    int32_t *ytr = NULL, *yte = NULL;
    uint32_t *perm = NULL;
    char tmp[4096] = "";
    hid_t f = H5I_INVALID_HID;
    size_t ncols = 0, lcol = 0;
    int first = 1;

    rc = open_input(csv, &lr.gz);
    if (rc)
        goto done;
    for (;;) {
        int got = read_line(&lr, csv);
        if (got < 0) {
            rc = got;
            goto done;
        }
        if (got == 0)
            break;
        if (is_blank(lr.buf))
            continue;
        if (first) {
            first = 0;
            ncols = count_cells(lr.buf);
            if (ncols < 2) {
                rc = tsr_error_set(TSR_EDATA,
                                   "%s: line %zu has %zu column; expected features and a label separated "
                                   "by commas",
                                   csv, lr.lineno, ncols);
                goto done;
            }
            if (label_col >= 0 && (size_t)label_col >= ncols) {
                rc = tsr_error_set(TSR_EINVAL,
                                   "%s: label column %d does not exist; the file has %zu columns "
                                   "(0..%zu)",
                                   csv, label_col, ncols, ncols - 1);
                goto done;
            }
            lcol = label_col < 0 ? ncols - 1 : (size_t)label_col;
            t.d = ncols - 1;
            if (looks_like_header(lr.buf))
                continue;
        }
        rc = parse_row(&t, csv, lr.buf, lr.lineno, ncols, lcol, scale);
        if (rc)
            goto done;
    }
    gzclose(lr.gz);
    lr.gz = NULL;
    if (t.rows == 0) {
        rc = tsr_error_set(TSR_EDATA, "%s: no data rows; expected numeric lines like \"0.5,1.2,3\"", csv);
        goto done;
    }
    if (t.rows > UINT32_MAX) {
        rc =
            tsr_error_set(TSR_EDATA, "%s: %zu rows; at most %lu are supported", csv, t.rows, (unsigned long)UINT32_MAX);
        goto done;
    }

    size_t n = t.rows, d = t.d, nte = 0;
    if (test_fraction > 0) {
        nte = (size_t)floor((double)n * test_fraction + 0.5);
        if (nte == 0)
            nte = 1;
        if (nte >= n) {
            rc = tsr_error_set(TSR_EDATA,
                               "%s: %zu rows are too few for a test fraction of %g (no training rows "
                               "would remain)",
                               csv, n, test_fraction);
            goto done;
        }
    }
    size_t ntr = n - nte;
    perm = malloc(n * sizeof(uint32_t));
    xtr = malloc(ntr * d * sizeof(float));
    ytr = malloc(ntr * sizeof(int32_t));
    if (nte) {
        xte = malloc(nte * d * sizeof(float));
        yte = malloc(nte * sizeof(int32_t));
    }
    if (!perm || !xtr || !ytr || (nte && (!xte || !yte))) {
        rc = tsr_error_set(TSR_ENOMEM, "%s: out of memory for %zu rows", csv, n);
        goto done;
    }
    for (size_t i = 0; i < n; i++)
        perm[i] = (uint32_t)i;
    if (nte) {
        /* Shuffled so the test rows are a random sample, the same for a seed. */
        tsr_rng_t r;
        tsr_rng_seed(&r, seed, CSV_SPLIT_STREAM);
        tsr_rng_shuffle(&r, perm, n);
    }
    take_rows(&t, perm, ntr, xtr, ytr);
    if (nte)
        take_rows(&t, perm + ntr, nte, xte, yte);
    free(t.x);
    free(t.y);
    t.x = NULL;
    t.y = NULL;

    rc = tsr_h5w_create_tmp(out, tmp, sizeof tmp, &f);
    if (rc == TSR_OK)
        rc = write_split(f, "X", "y", xtr, ytr, ntr, d);
    if (rc == TSR_OK && nte)
        rc = write_split(f, "X_test", "y_test", xte, yte, nte, d);
    if (rc == TSR_OK)
        rc = tsr_h5w_root_attrs(f, "tessera-dataset", csv);
    if (rc == TSR_OK)
        rc = tsr_h5w_attr_int64(f, "/", "label_column", (int64_t)lcol);
    if (rc == TSR_OK)
        rc = tsr_h5w_attr_double(f, "/", "test_fraction", test_fraction);
    if (rc == TSR_OK)
        rc = tsr_h5w_attr_int64(f, "/", "seed", (int64_t)seed);
    if (rc == TSR_OK)
        rc = tsr_h5w_attr_double(f, "/", "scale", scale);
    rc = tsr_h5w_finish(f, tmp, out, rc);
done:
    if (lr.gz)
        gzclose(lr.gz);
    free(lr.buf);
    free(t.x);
    free(t.y);
    free(perm);
    free(xtr);
    free(ytr);
    free(xte);
    free(yte);
    return rc;
}

int tsr_data_convert_csv(const char *csv, const char *out, int label_col, double test_fraction, uint64_t seed)
{
    return tsr_data_convert_csv_scaled(csv, out, label_col, test_fraction, seed, 1.0);
}
