/* SPDX-License-Identifier: BSD-3-Clause */
/* The checkpoint file format: HDF5 datasets plus root attributes and a
 * CRC-32 over every dataset, so damage is found before anything is loaded.
 * Reading and verifying; write.c writes. */
#include "ckpt/internal.h"
#include "common/crc32.h"
#include "common/h5io.h"
#include "common/h5lock.h"
#include "common/fileutil.h"
#include "tessera/error.h"

#include <hdf5.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

size_t tsr_ckpt_type_size(tsr_ckpt_type_t t)
{
    return t == TSR_CKPT_FLOAT64 || t == TSR_CKPT_INT64 ? 8 : t == TSR_CKPT_UINT8 ? 1 : 4;
}

hid_t tsr_ckpt_h5_type(tsr_ckpt_type_t t, int native)
{
    switch (t) {
    case TSR_CKPT_FLOAT64: return native ? H5T_NATIVE_DOUBLE : H5T_IEEE_F64LE;
    case TSR_CKPT_INT64: return native ? H5T_NATIVE_INT64 : H5T_STD_I64LE;
    case TSR_CKPT_UINT8: return native ? H5T_NATIVE_UINT8 : H5T_STD_U8LE;
    default: return native ? H5T_NATIVE_FLOAT : H5T_IEEE_F32LE;
    }
}

/* The type a stored dataset has, or -1 if tessera does not write it. */
static int stored_type(hid_t t)
{
    static const tsr_ckpt_type_t all[] = {TSR_CKPT_FLOAT32, TSR_CKPT_FLOAT64, TSR_CKPT_INT64, TSR_CKPT_UINT8};
    for (int i = 0; i < 4; i++)
        if (H5Tequal(t, tsr_ckpt_h5_type(all[i], 0)) > 0)
            return (int)all[i];
    return -1;
}

int tsr_ckpt_file_name(const char *dir, long step, char *buf, size_t len)
{
    int n = snprintf(buf, len, "%s/ckpt-%010ld.h5", dir, step);
    if (n < 0 || (size_t)n >= len)
        return tsr_error_set(TSR_EINVAL, "%s: checkpoint path too long", dir);
    return TSR_OK;
}

static uint32_t crc_field(uint32_t crc, const char *name, const char *value)
{
    unsigned char len[8];
    uint64_t n = strlen(value);
    for (int i = 0; i < 8; i++)
        len[i] = (unsigned char)(n >> (8 * i));
    crc = tsr_crc32(crc, name, strlen(name) + 1);
    crc = tsr_crc32(crc, len, sizeof len);
    return tsr_crc32(crc, value, (size_t)n);
}

void tsr_ckpt_int_attrs(const tsr_ckpt_meta_t *meta, tsr_ckpt_int_attr_t *out)
{
    const tsr_ckpt_int_attr_t ints[TSR_CKPT_NINTS] = {
        {"version", TSR_CKPT_VERSION},    {"step", meta->step},
        {"epoch", meta->epoch},           {"samples_seen", meta->samples_seen},
        {"world_size", meta->world_size}, {"seed", meta->seed}};
    memcpy(out, ints, sizeof ints);
}

uint32_t tsr_ckpt_crc_attrs(uint32_t crc, const tsr_ckpt_meta_t *meta, const char *created, const char *list)
{
    tsr_ckpt_int_attr_t ints[TSR_CKPT_NINTS];
    char num[32];
    tsr_ckpt_int_attrs(meta, ints);
    crc = crc_field(crc, "format", TSR_CKPT_FORMAT);
    for (size_t i = 0; i < TSR_CKPT_NINTS; i++) {
        snprintf(num, sizeof num, "%lld", ints[i].v);
        crc = crc_field(crc, ints[i].name, num);
    }
    crc = crc_field(crc, "created", created);
    crc = crc_field(crc, "config", meta->config ? meta->config : "");
    crc = crc_field(crc, "model", meta->model ? meta->model : "");
    return crc_field(crc, "checksum_datasets", list);
}

/* Root attributes through the common HDF5 layer, in the forms used below. */
static int get_str(hid_t obj, const char *name, char **out) { return tsr_h5_attr_get_str_alloc(obj, name, out); }

static int get_long(hid_t obj, const char *name, long *v)
{
    long long x;
    if (tsr_h5_attr_get_i64(obj, name, &x))
        return -1;
    *v = (long)x;
    return 0;
}

/* Reads one listed dataset, adds it to the CRC, and into its region if one
 * is registered under that name. */
static int read_one(hid_t f, const char *path, const char *name, tsr_ckpt_region_t *r, int n, uint32_t *crc,
                    size_t *bytes, int *found)
{
    if (H5Lexists(f, name, H5P_DEFAULT) <= 0 && !(name[0] == '/' && H5Lexists(f, name + 1, H5P_DEFAULT) > 0))
        return tsr_error_set(TSR_EDATA, "%s: dataset %s named in checksum_datasets is missing", path, name);
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    if (d < 0)
        return tsr_error_set(TSR_EDATA, "%s: cannot open dataset %s", path, name);
    hid_t s = H5Dget_space(d), t = H5Dget_type(d);
    int type = stored_type(t), nd = H5Sget_simple_extent_ndims(s);
    hsize_t dims[TSR_CKPT_MAX_DIMS] = {0};
    int rc = TSR_OK;
    void *buf = NULL, *own = NULL;
    if (type < 0 || nd < 0 || nd > TSR_CKPT_MAX_DIMS) {
        rc = tsr_error_set(TSR_EDATA, "%s: dataset %s has a type or rank tessera does not write", path, name);
        goto out;
    }
    H5Sget_simple_extent_dims(s, dims, NULL);
    size_t count = 1;
    for (int i = 0; i < nd; i++)
        count *= dims[i];
    size_t nb = count * tsr_ckpt_type_size((tsr_ckpt_type_t)type);
    for (int i = 0; i < n && !buf; i++) {
        if (strcmp(r[i].path, name) != 0)
            continue;
        int same = (int)r[i].type == type && r[i].ndims == nd;
        for (int k = 0; same && k < nd; k++)
            same = r[i].dims[k] == dims[k];
        if (!same) {
            rc = tsr_error_set(TSR_EDATA,
                               "%s: dataset %s has another type or shape than this run's (%zu values "
                               "expected, file has %zu)",
                               path, name, r[i].bytes / tsr_ckpt_type_size(r[i].type), count);
            goto out;
        }
        buf = r[i].snap;
        found[i] = 1;
    }
    if (!buf && nb) {
        buf = own = malloc(nb);
        if (!own) {
            rc = tsr_error_set(TSR_ENOMEM, "%s: out of memory reading %s", path, name);
            goto out;
        }
    }
    if (nb && H5Dread(d, tsr_ckpt_h5_type((tsr_ckpt_type_t)type, 1), H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0) {
        rc = tsr_error_set(TSR_EDATA, "%s: reading dataset %s failed (truncated or damaged file)", path, name);
        goto out;
    }
    *crc = tsr_crc32(*crc, buf, nb);
    *bytes += nb;
out:
    free(own);
    H5Tclose(t);
    H5Sclose(s);
    H5Dclose(d);
    return rc;
}

int tsr_ckpt_file_read(const char *path, tsr_ckpt_info_t *info, tsr_ckpt_region_t *r, int n)
{
    tsr_ckpt_info_t tmp;
    char *fmt = NULL, *sum = NULL, *list = NULL, *list_copy = NULL, *created_copy = NULL, want[32];
    int *found = calloc((size_t)n + 1, sizeof *found);
    int rc = TSR_OK;
    hid_t f = -1;
    if (!info)
        info = &tmp;
    memset(info, 0, sizeof *info);
    if (!found)
        return tsr_error_set(TSR_ENOMEM, "%s: out of memory", path);

    tsr_h5_lock();
    if ((rc = tsr_file_check_input(path, "a tessera checkpoint (HDF5)")))
        goto out;
    if (H5Fis_hdf5(path) <= 0) {
        rc = tsr_error_set(TSR_EDATA, "%s: not an HDF5 file (truncated, empty or another format)", path);
        goto out;
    }
    f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) {
        rc = tsr_error_set(TSR_EDATA, "%s: HDF5 cannot open it (truncated or damaged)", path);
        goto out;
    }
    if (get_str(f, "format", &fmt) || strcmp(fmt, TSR_CKPT_FORMAT) != 0) {
        rc = tsr_error_set(TSR_EDATA, "%s: root attribute format is %s%s%s; expected \"%s\"", path, fmt ? "\"" : "",
                           fmt ? fmt : "missing", fmt ? "\"" : "", TSR_CKPT_FORMAT);
        goto out;
    }
    if (get_long(f, "version", &info->version) || info->version < 1 || info->version > TSR_CKPT_VERSION) {
        rc = tsr_error_set(TSR_EDATA, "%s: checkpoint format version %ld; this tessera reads versions 1 to %d", path,
                           info->version, TSR_CKPT_VERSION);
        goto out;
    }
    if (get_long(f, "step", &info->step) || get_long(f, "epoch", &info->epoch) ||
        get_long(f, "samples_seen", &info->samples_seen) || get_long(f, "seed", &info->seed) ||
        get_long(f, "world_size", &info->world_size) || get_str(f, "checksum", &sum) ||
        get_str(f, "checksum_datasets", &list) || get_str(f, "created", &created_copy)) {
        rc = tsr_error_set(TSR_EDATA,
                           "%s: a required root attribute (step, epoch, samples_seen, seed, world_size, "
                           "created, checksum, checksum_datasets) is missing",
                           path);
        goto out;
    }
    snprintf(info->created, sizeof info->created, "%s", created_copy);
    get_str(f, "config", &info->config);
    get_str(f, "model", &info->model);
    /* Version 2 checksums the attributes after the data (strtok below cuts the list). */
    tsr_ckpt_meta_t m = {info->step,   info->epoch, info->samples_seen, info->seed, (int)info->world_size,
                         info->config, info->model};
    list_copy = strdup(list);
    if (!list_copy) {
        rc = tsr_error_set(TSR_ENOMEM, "%s: out of memory", path);
        goto out;
    }
    if ((long)m.world_size != info->world_size) {
        rc = tsr_error_set(TSR_EDATA, "%s: root attribute world_size = %ld is out of range", path, info->world_size);
        goto out;
    }
    uint32_t crc = 0;
    char *save = NULL;
    for (char *name = strtok_r(list, "\n", &save); name; name = strtok_r(NULL, "\n", &save)) {
        if ((rc = read_one(f, path, name, r, n, &crc, &info->bytes, found)))
            goto out;
        info->ndatasets++;
    }
    if (info->version >= 2)
        crc = tsr_ckpt_crc_attrs(crc, &m, created_copy, list_copy);
    snprintf(want, sizeof want, "crc32:%08lx", (unsigned long)crc);
    if (strcmp(want, sum) != 0) {
        rc = tsr_error_set(TSR_EDATA, "%s: checksum mismatch (file says %s, data gives %s); the file is damaged", path,
                           sum, want);
        goto out;
    }
    for (int i = 0; i < n; i++)
        if (!found[i]) {
            rc = tsr_error_set(TSR_EDATA, "%s: has no dataset %s that this run needs", path, r[i].path);
            goto out;
        }
out:
    if (f >= 0)
        H5Fclose(f);
    tsr_h5_unlock();
    free(fmt);
    free(sum);
    free(list);
    free(list_copy);
    free(created_copy);
    free(found);
    if (rc || info == &tmp)
        tsr_ckpt_info_free(info);
    return rc;
}

void tsr_ckpt_info_free(tsr_ckpt_info_t *info)
{
    if (!info)
        return;
    free(info->config);
    free(info->model);
    info->config = info->model = NULL;
}
