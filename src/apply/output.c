/* SPDX-License-Identifier: BSD-3-Clause */
/* The output of a rows function: one HDF5 file written by every rank at
 * once through HDF5's MPI-IO driver, with collective writes. It is built
 * under a fixed temporary name beside the output (".NAME.tmp.apply"), which
 * is renamed over NAME on success and removed on failure; beside it a
 * journal (".NAME.tmp.apply.journal", journal.c) lists the partitions
 * flushed to it, so a rerun after a kill reopens it and continues.
 * Datasets are contiguous and allocated when created (parallel HDF5 does
 * so anyway), so after the first flush only raw data changes: a file left
 * by a kill stays readable. */
#include "apply/internal.h"

#include "common/fileutil.h"
#include "common/h5io.h"
#include "common/h5lock.h"
#include "tessera/error.h"

#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int names(apply_out_t *o, const char *path)
{
    char real[4096], dir[4096], base[4096];
    int rc = tsr_file_resolve(path, real, sizeof real);
    if (rc)
        return rc;
    snprintf(dir, sizeof dir, "%s", real);
    snprintf(base, sizeof base, "%s", real);
    snprintf(o->path, sizeof o->path, "%s", path);
    int n = snprintf(o->tmp, sizeof o->tmp, "%s/.%s.tmp.apply", dirname(dir), basename(base));
    snprintf(o->journal, sizeof o->journal, "%s.journal", o->tmp);
    if (n < 0 || (size_t)n + 8 >= sizeof o->tmp)
        return tsr_error_set(TSR_EINVAL, "%s: path too long", path);
    return TSR_OK;
}

static hid_t mpio_fapl(MPI_Comm comm)
{
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (fapl >= 0 && H5Pset_fapl_mpio(fapl, comm, MPI_INFO_NULL) < 0) {
        H5Pclose(fapl);
        return -1;
    }
    return fapl;
}

/* Creates the datasets (collective); lock held. */
static int create_sets(apply_out_t *o)
{
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_alloc_time(dcpl, H5D_ALLOC_TIME_EARLY);
    H5Pset_fill_time(dcpl, H5D_FILL_TIME_NEVER);
    int rc = TSR_OK;
    for (int i = 0; i < o->nsets && rc == TSR_OK; i++) {
        hsize_t dims[2] = {o->rows, o->spec[i].width};
        hid_t space = H5Screate_simple(o->spec[i].width ? 2 : 1, dims, NULL);
        hid_t ftype = H5Tequal(o->spec[i].type, H5T_NATIVE_INT32) > 0 ? H5T_STD_I32LE : H5T_IEEE_F32LE;
        o->set[i] = space < 0 ? -1 : H5Dcreate2(o->file, o->spec[i].name, ftype, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
        if (o->set[i] < 0)
            rc = tsr_error_set(TSR_EIO, "%s: cannot create dataset %s", o->path, o->spec[i].name);
        if (space >= 0)
            H5Sclose(space);
    }
    H5Pclose(dcpl);
    if (rc == TSR_OK && tsr_h5_attr_put_str(o->file, "format", "tessera-apply") != TSR_OK)
        rc = tsr_error_set(TSR_EIO, "%s: cannot write its attributes", o->path);
    return rc;
}

static int open_sets(apply_out_t *o)
{
    for (int i = 0; i < o->nsets; i++) {
        o->set[i] = H5Dopen2(o->file, o->spec[i].name, H5P_DEFAULT);
        if (o->set[i] < 0)
            return TSR_EIO;
    }
    return TSR_OK;
}

static void close_sets(apply_out_t *o)
{
    for (int i = 0; i < o->nsets; i++)
        if (o->set[i] >= 0)
            H5Dclose(o->set[i]);
    for (int i = 0; i < o->nsets; i++)
        o->set[i] = -1;
}

int apply_out_open(apply_out_t *o, MPI_Comm comm, const char *path, const apply_out_spec_t *spec, int nsets,
                   size_t rows, size_t part_rows, uint32_t fingerprint)
{
    memset(o, 0, sizeof *o);
    o->comm = comm;
    o->file = -1;
    o->nsets = nsets;
    o->rows = rows;
    o->part_rows = part_rows;
    o->nparts = (rows + part_rows - 1) / part_rows;
    memcpy(o->spec, spec, (size_t)nsets * sizeof *spec);
    for (int i = 0; i < APPLY_MAX_OUT; i++)
        o->set[i] = -1;
    MPI_Comm_rank(comm, &o->rank);
    int rc = names(o, path);
    o->done = calloc(o->nparts, 1);
    if (rc == TSR_OK && !o->done)
        rc = tsr_error_set(TSR_ENOMEM, "apply: out of memory");
    /* Rank 0 decides: resume (journal matches, temporary there) or start afresh. */
    int resume = 0;
    if (rc == TSR_OK && o->rank == 0) {
        resume = access(o->tmp, R_OK | W_OK) == 0 && apply_journal_load(o->journal, fingerprint, o->done, o->nparts);
        if (!resume) {
            memset(o->done, 0, o->nparts);
            unlink(o->tmp);
            int fd = open(o->tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
            if (fd < 0)
                rc = tsr_error_set(TSR_EIO, "%s: cannot create the output's temporary %s: %m", path, o->tmp);
            else
                close(fd);
        }
    }
    if ((rc = apply_agree(comm, rc)) != TSR_OK) {
        free(o->done);
        o->done = NULL;
        return rc;
    }
    MPI_Bcast(&resume, 1, MPI_INT, 0, comm);
    MPI_Bcast(o->done, (int)o->nparts, MPI_UINT8_T, 0, comm);
    tsr_h5_lock();
    hid_t fapl = mpio_fapl(comm);
    H5E_BEGIN_TRY
    {
        if (resume) {
            o->file = fapl < 0 ? -1 : H5Fopen(o->tmp, H5F_ACC_RDWR, fapl);
            if (o->file >= 0 && open_sets(o) != TSR_OK) {
                close_sets(o);
                H5Fclose(o->file);
                o->file = -1;
            }
        }
    }
    H5E_END_TRY;
    int opened = o->file >= 0, all;
    MPI_Allreduce(&opened, &all, 1, MPI_INT, MPI_MIN, comm);
    if (resume && !all) { /* unreadable after all: start afresh */
        if (o->file >= 0) {
            close_sets(o);
            H5Fclose(o->file);
            o->file = -1;
        }
        resume = 0;
        memset(o->done, 0, o->nparts);
    }
    if (!resume) {
        o->file = fapl < 0 ? -1 : H5Fcreate(o->tmp, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
        rc = o->file < 0 ? tsr_error_set(TSR_EIO, "%s: cannot create %s with parallel HDF5", path, o->tmp)
                         : create_sets(o);
        if (rc == TSR_OK && H5Fflush(o->file, H5F_SCOPE_GLOBAL) < 0)
            rc = tsr_error_set(TSR_EIO, "%s: cannot flush %s", path, o->tmp);
    }
    if (fapl >= 0)
        H5Pclose(fapl);
    tsr_h5_unlock();
    if (rc == TSR_OK && !resume && o->rank == 0)
        rc = apply_journal_start(o->journal, fingerprint);
    o->resumed = resume;
    rc = apply_agree(comm, rc);
    if (rc)
        apply_out_close(o, 0, NULL, 0);
    return rc;
}

/* The file selection of parts in set i (lock held). */
static hid_t select_parts(apply_out_t *o, int i, const size_t *parts, size_t n, size_t *rows)
{
    hid_t space = H5Dget_space(o->set[i]);
    *rows = 0;
    if (space < 0)
        return -1;
    H5Sselect_none(space);
    for (size_t k = 0; k < n; k++) {
        size_t first = parts[k] * o->part_rows;
        size_t cnt = first + o->part_rows > o->rows ? o->rows - first : o->part_rows;
        hsize_t off[2] = {first, 0}, c[2] = {cnt, o->spec[i].width};
        H5Sselect_hyperslab(space, H5S_SELECT_OR, off, NULL, c, NULL);
        *rows += cnt;
    }
    return space;
}

int apply_out_write(apply_out_t *o, const size_t *parts, size_t n, void *const *buf, size_t round_first,
                    size_t round_count)
{
    int rc = TSR_OK;
    tsr_h5_lock();
    hid_t dxpl = H5Pcreate(H5P_DATASET_XFER);
    H5Pset_dxpl_mpio(dxpl, H5FD_MPIO_COLLECTIVE);
    for (int i = 0; i < o->nsets; i++) {
        size_t rows;
        hid_t fspace = select_parts(o, i, parts, n, &rows);
        hsize_t mdims[2] = {rows ? rows : 1, o->spec[i].width};
        hid_t mspace = H5Screate_simple(o->spec[i].width ? 2 : 1, mdims, NULL);
        if (!rows)
            H5Sselect_none(mspace);
        if (fspace < 0 || mspace < 0 || H5Dwrite(o->set[i], o->spec[i].type, mspace, fspace, dxpl, buf[i]) < 0)
            rc = tsr_error_set(TSR_EIO, "%s: rank %d: writing %s failed", o->path, o->rank, o->spec[i].name);
        if (mspace >= 0)
            H5Sclose(mspace);
        if (fspace >= 0)
            H5Sclose(fspace);
    }
    H5Pclose(dxpl);
    if (H5Fflush(o->file, H5F_SCOPE_GLOBAL) < 0 && rc == TSR_OK)
        rc = tsr_error_set(TSR_EIO, "%s: flushing %s failed", o->path, o->tmp);
    tsr_h5_unlock();
    rc = apply_agree(o->comm, rc);
    if (rc == TSR_OK && o->rank == 0) {
        size_t *list = malloc(round_count * sizeof *list);
        if (!list)
            rc = tsr_error_set(TSR_ENOMEM, "apply: out of memory");
        for (size_t k = 0; list && k < round_count; k++)
            list[k] = round_first + k;
        if (list)
            rc = apply_journal_add(o->journal, list, round_count);
        free(list);
    }
    return apply_agree(o->comm, rc);
}

/* A small whole dataset written by rank 0 (name [n] float), collective create. */
int apply_out_small(apply_out_t *o, const char *name, const float *v, size_t n)
{
    int rc = TSR_OK;
    tsr_h5_lock();
    hsize_t dims[1] = {n};
    hid_t space = H5Screate_simple(1, dims, NULL);
    hid_t set =
        space < 0 ? -1 : H5Dcreate2(o->file, name, H5T_IEEE_F32LE, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (set < 0)
        rc = tsr_error_set(TSR_EIO, "%s: cannot create %s", o->path, name);
    else if (o->rank == 0 && H5Dwrite(set, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) < 0)
        rc = tsr_error_set(TSR_EIO, "%s: cannot write %s", o->path, name);
    if (set >= 0)
        H5Dclose(set);
    if (space >= 0)
        H5Sclose(space);
    tsr_h5_unlock();
    return apply_agree(o->comm, rc);
}

int apply_out_close(apply_out_t *o, int ok, const char *const *inputs, int ninputs)
{
    int rc = TSR_OK;
    tsr_h5_lock();
    close_sets(o);
    if (o->file >= 0 && H5Fclose(o->file) < 0)
        rc = tsr_error_set(TSR_EIO, "%s: closing %s failed", o->path, o->tmp);
    o->file = -1;
    tsr_h5_unlock();
    rc = apply_agree(o->comm, ok ? rc : TSR_OK);
    if (o->rank == 0 && o->tmp[0]) {
        if (ok && rc == TSR_OK && (rc = tsr_file_check_output(o->path, inputs, ninputs)) == TSR_OK)
            rc = tsr_file_commit(o->tmp, o->path);
        if (!ok || rc)
            unlink(o->tmp);
        unlink(o->journal);
    }
    free(o->done);
    o->done = NULL;
    return ok ? apply_agree(o->comm, rc) : TSR_OK;
}
