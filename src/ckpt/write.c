/* SPDX-License-Identifier: BSD-3-Clause */
/* Writing a checkpoint file.
 *
 * HDF5 builds the file in memory (core driver, the engine's persistent image
 * buffer: common/h5mem.h) but never holds the big datasets' bytes: datasets
 * of at least DIRECT_MIN bytes are created contiguous, their space allocated
 * at creation and never filled, and tessera writes their bytes itself at the
 * offsets HDF5 gave them, straight from the regions (or their snapshots),
 * then the image around them. The root attributes are written before the
 * big datasets are created, so all metadata lies in front of their space,
 * with a placeholder checksum of the same length that is overwritten in
 * place once the data has been read. HDF5 never touches the disk, so a full
 * or read-only disk is one clean error; the file on disk is HDF5's metadata
 * exactly as HDF5 laid it out, with each big dataset's bytes where HDF5 put
 * its storage (contiguous, little-endian, as H5Dwrite would have put them).
 *
 * The data is read twice, once by the CRC and once by the kernel copying it
 * into the page cache; the CRC runs after the write calls, while the disk is
 * already busy with them (writeback is started range by range). */
#include "ckpt/internal.h"
#include "common/h5io.h"
#include "common/crc32.h"
#include "common/fileutil.h"
#include "common/h5lock.h"
#include "common/h5mem.h"
#include "tessera/error.h"
#include "tessera/log.h"
#include "tessera/perf.h"

#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define DIRECT_MIN ((size_t)64 << 10) /* datasets at least this big are written by tessera */
#define CHUNK ((size_t)8 << 20)       /* write() size; writeback is started after each */
#define PLACEHOLDER "crc32:00000000"

typedef struct {
    const char *path;
    char tmp[4096];
    int fd;
    const tsr_ckpt_region_t *r;
    int n, from_live;
    int direct;     /* some regions are big enough for tessera to write */
    size_t total;   /* data bytes */
    haddr_t *off;   /* per region: where tessera writes it, or HADDR_UNDEF if HDF5 did */
    size_t written; /* bytes of the temporary file so far (for messages) */
    size_t end;     /* the highest offset written */
} job_t;

static const void *data_of(const job_t *j, int i)
{
    /* An empty region may have no memory; its snapshot buffer exists. */
    return j->from_live && j->r[i].live ? j->r[i].live : j->r[i].snap;
}

/* Overwrites the checksum attribute (same length as the placeholder). */
static int set_checksum(hid_t f, const char *sum)
{
    hid_t a = H5Aopen(f, "checksum", H5P_DEFAULT), t = a >= 0 ? H5Aget_type(a) : -1;
    int ok = t >= 0 && H5Tget_size(t) == strlen(sum) + 1 && H5Awrite(a, t, sum) >= 0;
    if (t >= 0)
        H5Tclose(t);
    if (a >= 0)
        H5Aclose(a);
    return ok ? 0 : -1;
}

static int put_attrs(hid_t f, const tsr_ckpt_meta_t *meta, const char *list, const char *when)
{
    /* The names and kinds of DESIGN.md's checkpoint format, checksum last. */
    const char *strs[][2] = {{"created", when},
                             {"config", meta->config ? meta->config : ""},
                             {"model", meta->model ? meta->model : ""},
                             {"checksum", PLACEHOLDER},
                             {"checksum_datasets", list}};
    tsr_ckpt_int_attr_t ints[TSR_CKPT_NINTS];
    tsr_ckpt_int_attrs(meta, ints);
    int ok = tsr_h5_attr_put_str(f, "format", TSR_CKPT_FORMAT) == 0;
    for (size_t i = 0; ok && i < TSR_CKPT_NINTS; i++)
        ok = tsr_h5_attr_put_i64(f, ints[i].name, ints[i].v) == 0;
    for (size_t i = 0; ok && i < sizeof strs / sizeof *strs; i++)
        ok = tsr_h5_attr_put_str(f, strs[i][0], strs[i][1]) == 0;
    return ok ? 0 : -1;
}

/* Creates region i's dataset; small ones (pass 0) get their data from HDF5,
 * big ones (pass 1) only their space. */
static int put_dataset(hid_t f, job_t *j, int i, hid_t lcpl, hid_t dcpl)
{
    const tsr_ckpt_region_t *r = &j->r[i];
    hsize_t dims[TSR_CKPT_MAX_DIMS];
    for (int d = 0; d < r->ndims; d++)
        dims[d] = r->dims[d];
    hid_t s = H5Screate_simple(r->ndims, dims, NULL);
    hid_t d = H5Dcreate2(f, r->path, tsr_ckpt_h5_type(r->type, 0), s, lcpl, dcpl, H5P_DEFAULT);
    int ok = d >= 0;
    if (ok && dcpl != H5P_DEFAULT)
        j->off[i] = H5Dget_offset(d);
    /* Written by HDF5 if small, or if HDF5 has no offset for it after all. */
    if (ok && j->off[i] == HADDR_UNDEF && r->bytes > 0)
        ok = H5Dwrite(d, tsr_ckpt_h5_type(r->type, 1), H5S_ALL, H5S_ALL, H5P_DEFAULT, data_of(j, i)) >= 0;
    if (d >= 0)
        H5Dclose(d);
    H5Sclose(s);
    return ok ? 0 : -1;
}

/* The in-memory file with every attribute and dataset; big datasets last,
 * so that their space follows all the metadata. */
static hid_t build(job_t *j, tsr_h5_image_t *img, const tsr_ckpt_meta_t *meta, const char *list, const char *when,
                   const char **bad)
{
    hid_t f;
    if (j->direct) {
        /* Metadata blocks big enough that all of it comes first. */
        size_t meta_block = (size_t)16 << 10;
        meta_block += 2048 * (size_t)j->n + 2 * strlen(list) + (meta->config ? strlen(meta->config) : 0) +
                      (meta->model ? strlen(meta->model) : 0);
        meta_block = (meta_block + 4095) & ~(size_t)4095;
        f = tsr_h5_mem_create_sparse(img, (size_t)64 << 10, meta_block);
    } else {
        f = tsr_h5_mem_create(img, j->total);
    }
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE), dcpl = H5Pcreate(H5P_DATASET_CREATE);
    int ok = f >= 0 && lcpl >= 0 && dcpl >= 0 && H5Pset_create_intermediate_group(lcpl, 1) >= 0 &&
             H5Pset_layout(dcpl, H5D_CONTIGUOUS) >= 0 && H5Pset_alloc_time(dcpl, H5D_ALLOC_TIME_EARLY) >= 0 &&
             H5Pset_fill_time(dcpl, H5D_FILL_TIME_NEVER) >= 0;
    *bad = "file creation";
    if (ok && put_attrs(f, meta, list, when) != 0) {
        ok = 0;
        *bad = "root attributes";
    }
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; ok && i < j->n; i++) {
            int big = j->direct && j->r[i].bytes >= DIRECT_MIN;
            if (big != pass)
                continue;
            if (put_dataset(f, j, i, lcpl, big ? dcpl : H5P_DEFAULT) != 0) {
                ok = 0;
                *bad = j->r[i].path;
            }
        }
    if (dcpl >= 0)
        H5Pclose(dcpl);
    if (lcpl >= 0)
        H5Pclose(lcpl);
    if (!ok && f >= 0) {
        H5Fclose(f);
        f = -1;
    }
    return f;
}

static int write_at(job_t *j, const void *buf, size_t len, size_t off)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t w = pwrite(j->fd, p, len, (off_t)off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            int e = w < 0 ? errno : ENOSPC;
            return tsr_error_set(TSR_EIO, "%s: write failed after %zu bytes: %s", j->path, j->written, strerror(e));
        }
        p += w;
        off += (size_t)w;
        len -= (size_t)w;
        j->written += (size_t)w;
    }
    if (off > j->end)
        j->end = off;
    return TSR_OK;
}

/* The big datasets' bytes, each chunk's writeback started at once so the
 * disk is busy while the rest is copied and checksummed. */
static int put_data(job_t *j)
{
    for (int i = 0; i < j->n; i++) {
        if (j->off[i] == HADDR_UNDEF)
            continue;
        const unsigned char *p = data_of(j, i);
        for (size_t pos = 0; pos < j->r[i].bytes; pos += CHUNK) {
            size_t k = j->r[i].bytes - pos < CHUNK ? j->r[i].bytes - pos : CHUNK;
            int rc = write_at(j, p + pos, k, (size_t)j->off[i] + pos);
            if (rc)
                return rc;
#ifdef SYNC_FILE_RANGE_WRITE
            /* Only a hint: fsync below is what makes the data durable. */
            sync_file_range(j->fd, (off_t)(j->off[i] + pos), (off_t)k, SYNC_FILE_RANGE_WRITE);
#endif
        }
    }
    return TSR_OK;
}

/* CRC-32 over every region in order, after put_data: the data is read from
 * memory again while the disk writes it back. */
static uint32_t checksum(const job_t *j)
{
    uint32_t crc = 0;
    for (int i = 0; i < j->n; i++)
        crc = tsr_crc32(crc, data_of(j, i), j->r[i].bytes);
    return crc;
}

static int by_offset(const void *a, const void *b)
{
    haddr_t x = **(const haddr_t *const *)a, y = **(const haddr_t *const *)b;
    return x < y ? -1 : x > y;
}

/* The image around the datasets tessera wrote; parts of it past the core
 * driver's memory are zeros, left as holes. */
static int put_image(job_t *j, const tsr_h5_image_t *img)
{
    size_t len = img->len, pos = 0, nd = 0;
    /* Defensive: nothing HDF5 wrote, nor any dataset, is ever cut off. */
    for (size_t e = img->mem; j->direct && e > len; e--)
        if (img->buf[e - 1]) {
            len = e;
            break;
        }
    for (int i = 0; i < j->n; i++)
        if (j->off[i] != HADDR_UNDEF && (size_t)j->off[i] + j->r[i].bytes > len)
            len = (size_t)j->off[i] + j->r[i].bytes;
    const haddr_t **ord = malloc(((size_t)j->n + 1) * sizeof *ord);
    if (!ord)
        return tsr_error_set(TSR_ENOMEM, "%s: out of memory", j->path);
    for (int i = 0; i < j->n; i++)
        if (j->off[i] != HADDR_UNDEF)
            ord[nd++] = &j->off[i];
    qsort(ord, nd, sizeof *ord, by_offset);
    int rc = TSR_OK;
    for (size_t k = 0; k <= nd && !rc; k++) {
        size_t stop = k < nd ? (size_t)*ord[k] : len;
        size_t have = stop < img->mem ? stop : img->mem;
        if (have > pos)
            rc = write_at(j, img->buf + pos, have - pos, pos);
        if (k < nd)
            pos = (size_t)*ord[k] + j->r[ord[k] - j->off].bytes;
    }
    free(ord);
    if (!rc && j->end < len && ftruncate(j->fd, (off_t)len) != 0)
        rc = tsr_error_set(TSR_EIO, "%s: extending %s to %zu bytes failed: %s", j->path, j->tmp, len, strerror(errno));
    return rc;
}

int tsr_ckpt_file_write(const char *path, const tsr_ckpt_region_t *r, int n, int from_live, const tsr_ckpt_meta_t *meta,
                        tsr_h5_image_t *img)
{
    job_t j = {.path = path, .fd = -1, .r = r, .n = n, .from_live = from_live};
    const char *bad = "file creation";
    char sum[32];
    double t0 = tsr_time_now();
    size_t listlen = 1;
    hid_t f = -1;
    int rc;
    for (int i = 0; i < n; i++)
        listlen += strlen(r[i].path) + 1;
    char *list = calloc(1, listlen);
    j.off = malloc(((size_t)n + 1) * sizeof *j.off);
    if (!list || !j.off) {
        rc = tsr_error_set(TSR_ENOMEM, "%s: out of memory", path);
        goto out;
    }
    for (int i = 0; i < n; i++) {
        strcat(list, r[i].path);
        strcat(list, "\n");
        j.off[i] = HADDR_UNDEF;
        j.total += r[i].bytes;
        j.direct |= r[i].bytes >= DIRECT_MIN;
    }
    if ((j.fd = tsr_file_create_tmp(path, j.tmp, sizeof j.tmp)) < 0) {
        rc = j.fd;
        goto out;
    }

    tsr_h5_lock();
    char when[40];
    time_t now = time(NULL);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
    f = build(&j, img, meta, list, when, &bad);
    tsr_h5_unlock();
    if (f < 0)
        goto h5fail;
    /* The data goes out without the HDF5 lock, which other threads may want. */
    rc = put_data(&j);
    snprintf(sum, sizeof sum, "crc32:%08lx",
             rc ? 0UL : (unsigned long)tsr_ckpt_crc_attrs(checksum(&j), meta, when, list));
    tsr_h5_lock();
    int ok = rc || set_checksum(f, sum) == 0;
    if (!ok)
        bad = "root attributes";
    /* Without big datasets the image is the whole file, as HDF5 would
     * write it (flushed, so its end is exact). */
    int closed = j.direct ? tsr_h5_mem_close_sparse(f, path, img) : tsr_h5_mem_finish(f, path, img);
    if (closed != TSR_OK && ok) {
        ok = 0;
        bad = "building the file image";
    }
    tsr_h5_unlock();
    if (!ok)
        goto h5fail;
    if (!rc)
        rc = put_image(&j, img);
    if (!rc && fsync(j.fd) != 0)
        rc = tsr_error_set(TSR_EIO, "%s: fsync failed: %s", path, strerror(errno));
    if (close(j.fd) != 0 && !rc)
        rc = tsr_error_set(TSR_EIO, "%s: close failed: %s", path, strerror(errno));
    j.fd = -1;
    if (!rc)
        rc = tsr_file_commit(j.tmp, path); /* removes the temporary on failure */
    if (rc)
        tsr_error_prefix(rc, "checkpoint write failed, the previous checkpoint is untouched: ");
    if (!rc) { /* PAPI sde:::tessera::ckpt_bytes and ckpt_ns */
        tsr_counter_add(TSR_COUNTER_CKPT_BYTES, (int64_t)j.written);
        tsr_counter_add(TSR_COUNTER_CKPT_NS, (int64_t)((tsr_time_now() - t0) * 1e9));
    }
    goto out;
h5fail:
    rc = tsr_error_set(TSR_EIO, "%s: checkpoint write failed at %s; the previous checkpoint is untouched", path, bad);
out:
    if (j.fd >= 0)
        close(j.fd);
    if (rc && j.tmp[0])
        tsr_file_discard(j.tmp);
    free(list);
    free(j.off);
    return rc;
}
