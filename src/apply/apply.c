/* SPDX-License-Identifier: BSD-3-Clause */
/* tsr_apply_run: checks the request, opens the input on every rank and
 * runs the function: stats and a plugin's reduction here (partials per
 * partition, merged in partition order on rank 0), the rows functions in
 * rows.c (predict.c, normalize.c, a plugin's map). */
#include "apply/internal.h"

#include "common/crc32.h"
#include "common/fileutil.h"
#include "tessera/error.h"
#include "tessera/log.h"
#include "tessera/runtime.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int is_plugin(const char *f)
{
    size_t n = strlen(f);
    return strchr(f, '/') || (n > 3 && strcmp(f + n - 3, ".so") == 0);
}

int apply_stats_pass(MPI_Comm comm, apply_input_t *in, size_t part_rows, int histogram, int all, apply_stats_t *st,
                     apply_keep_t *keep)
{
    size_t nparts = (in->n + part_rows - 1) / part_rows, nmine = 0;
    int rc = apply_stats_create(st, in->ncols, nparts, histogram);
    float *x = rc ? NULL : malloc(part_rows * in->ncols * sizeof *x);
    uint8_t *done = rc ? NULL : calloc(nparts, 1);
    if (rc == TSR_OK && (!x || !done))
        rc = tsr_error_set(TSR_ENOMEM, "apply: out of memory for %zu rows of %zu columns", part_rows, in->ncols);
    if ((rc = apply_agree(comm, rc)) != TSR_OK)
        goto done;
    apply_saved_t scratch, *sv = keep ? &keep->saved : &scratch;
    apply_saved_spec_t spec = {.fingerprint = keep ? keep->fingerprint : 0,
                               .every = keep ? keep->every : 0,
                               .nparts = nparts,
                               .rec_bytes = in->ncols * sizeof(apply_col_t),
                               .recs = st->part,
                               .mine = st->mine,
                               .hist = st->hist,
                               .hot = st->hot,
                               .hist_len = st->bits ? in->ncols << st->bits : 0};
    if ((rc = apply_saved_resume(sv, comm, keep ? keep->result : NULL, &spec, done)) != TSR_OK)
        goto done;
    apply_sched_t s;
    if ((rc = apply_agree(comm, apply_sched_create(comm, nparts, done, &s))) != TSR_OK)
        goto done;
    for (size_t v; (v = apply_sched_next_ahead(&s, in, part_rows)) < nparts;) {
        size_t first = v * part_rows, cnt = first + part_rows > in->n ? in->n - first : part_rows;
        if ((rc = apply_input_read(in, first, cnt, x)) == TSR_OK) {
            apply_stats_add(st, v, x, cnt);
            rc = apply_saved_tick(sv);
        }
        if (rc) {
            apply_sched_abort(&s);
            break;
        }
        apply_fault_tick(comm, &nmine);
    }
    apply_sched_destroy(&s);
    if ((rc = apply_agree(comm, rc)) == TSR_OK)
        rc = apply_agree(comm, apply_stats_reduce(st, comm, all));
done:
    free(x);
    free(done);
    if (rc)
        apply_stats_destroy(st);
    return rc;
}

static double save_every(const tsr_apply_opts_t *o)
{
    return o->save_seconds == 0 ? 10.0 : o->save_seconds < 0 ? 0.0 : o->save_seconds;
}

static int run_stats(MPI_Comm comm, const tsr_apply_opts_t *o, apply_input_t *in, uint32_t fingerprint)
{
    apply_stats_t st;
    apply_keep_t keep = {.result = o->stats_json, .fingerprint = fingerprint, .every = save_every(o)};
    int rank, rc = apply_stats_pass(comm, in, o->partition_rows, 1, 0, &st, &keep);
    if (rc) {
        apply_saved_finish(&keep.saved, comm); /* a failed run keeps nothing, as rows outputs */
        return rc;
    }
    MPI_Comm_rank(comm, &rank);
    if (rank == 0) {
        if (!o->quiet)
            apply_stats_print(&st, in->cols);
        if (o->stats_json)
            rc = apply_stats_json(&st, o->bins > 0 ? o->bins : 20, o->stats_json);
    }
    apply_stats_destroy(&st);
    rc = apply_agree(comm, rc);
    apply_saved_finish(&keep.saved, comm);
    return rc;
}

/* A plugin's reduction: a partial per partition, merged in order on rank 0. */
static int run_reduce(MPI_Comm comm, const tsr_apply_opts_t *o, apply_input_t *in, const apply_plugin_t *p,
                      uint32_t fingerprint)
{
    size_t part_rows = o->partition_rows, nparts = (in->n + part_rows - 1) / part_rows, len = p->partial_len;
    size_t nmine = 0;
    int rank, rc = TSR_OK;
    MPI_Comm_rank(comm, &rank);
    double *parts = calloc(nparts * len, sizeof *parts);
    uint8_t *mine = calloc(nparts, 1), *done = calloc(nparts, 1);
    float *x = malloc(part_rows * in->ncols * sizeof *x);
    if (!parts || !mine || !done || !x)
        rc = tsr_error_set(TSR_ENOMEM, "apply: out of memory for %zu partials of %zu values", nparts, len);
    apply_saved_t sv = {0};
    apply_saved_spec_t spec = {.fingerprint = fingerprint,
                               .every = save_every(o),
                               .nparts = nparts,
                               .rec_bytes = len * sizeof(double),
                               .recs = parts,
                               .mine = mine};
    if ((rc = apply_agree(comm, rc)) != TSR_OK || (rc = apply_saved_resume(&sv, comm, o->stats_json, &spec, done)))
        goto done;
    apply_sched_t s;
    if ((rc = apply_agree(comm, apply_sched_create(comm, nparts, done, &s))) != TSR_OK)
        goto done;
    for (size_t v; (v = apply_sched_next_ahead(&s, in, part_rows)) < nparts;) {
        size_t first = v * part_rows, cnt = first + part_rows > in->n ? in->n - first : part_rows;
        rc = apply_input_read(in, first, cnt, x);
        if (rc == TSR_OK)
            rc = apply_plugin_partial(p, x, cnt, in->ncols, first, parts + v * len);
        if (rc) {
            rc = tsr_error_prefix(rc, "partition %zu (rows %zu to %zu): ", v, first, first + cnt - 1);
            apply_sched_abort(&s);
            break;
        }
        mine[v] = 1;
        if ((rc = apply_saved_tick(&sv)) != TSR_OK) {
            apply_sched_abort(&s);
            break;
        }
        apply_fault_tick(comm, &nmine);
    }
    apply_sched_destroy(&s);
    if ((rc = apply_agree(comm, rc)) != TSR_OK)
        goto done;
    rc = apply_gather_parts(comm, nparts, mine, len * sizeof(double), parts, 0);
    for (size_t v = 1; rank == 0 && rc == TSR_OK && v < nparts; v++)
        rc = apply_plugin_merge(p, parts, parts + v * len);
    if (rank == 0 && rc == TSR_OK) {
        char *buf = NULL;
        size_t blen = 0;
        FILE *f = open_memstream(&buf, &blen);
        if (!f) {
            rc = tsr_error_set(TSR_ENOMEM, "apply: out of memory");
        } else {
            fputs("{\"result\": [", f);
            for (size_t i = 0; i < len; i++)
                fprintf(f, "%s%.17g", i ? ", " : "", parts[i]);
            fputs("]}\n", f);
            fclose(f);
            if (!o->quiet)
                fputs(buf, stdout);
            if (o->stats_json)
                rc = tsr_file_write_atomic(o->stats_json, buf, blen);
            free(buf);
        }
    }
    rc = apply_agree(comm, rc);
done:
    apply_saved_finish(&sv, comm); /* collective where it saved: every path here is agreed */
    free(parts);
    free(mine);
    free(done);
    free(x);
    return rc;
}

typedef struct map_ctx {
    const apply_plugin_t *p;
    size_t cols;
} map_ctx_t;

static int plugin_map(void *ctx, const float *x, size_t rows, size_t first_row, void *const *out)
{
    (void)first_row;
    map_ctx_t *m = ctx;
    return apply_plugin_map(m->p, x, rows, m->cols, out[0]);
}

static int run_plugin(MPI_Comm comm, const tsr_apply_opts_t *o, apply_input_t *in, uint32_t fingerprint)
{
    apply_plugin_t p;
    int rc = apply_agree(comm, apply_plugin_load(o->function, in->ncols, &p));
    if (rc)
        return rc;
    if (p.partial_len)
        return run_reduce(comm, o, in, &p, fingerprint);
    if (!o->output)
        return apply_agree(
            comm, tsr_error_set(TSR_EINVAL, "apply: the plugin %s maps rows: give --output FILE.h5", o->function));
    map_ctx_t m = {&p, in->ncols};
    const char *inputs[] = {in->path};
    apply_rows_fn_t fn = {.nout = 1,
                          .out = {{"/out", H5T_NATIVE_FLOAT, p.out_cols}},
                          .map = plugin_map,
                          .ctx = &m,
                          .inputs = inputs,
                          .ninputs = 1};
    return apply_rows_run(comm, in, o->partition_rows, o->output, fingerprint, &fn);
}

static uint32_t file_print(uint32_t crc, const char *path)
{
    struct stat sb;
    char real[4096];
    if (path && realpath(path, real))
        crc = tsr_crc32(crc, real, strlen(real));
    if (path && stat(path, &sb) == 0) {
        long long v[3] = {(long long)sb.st_size, (long long)sb.st_mtim.tv_sec, (long long)sb.st_mtim.tv_nsec};
        crc = tsr_crc32(crc, v, sizeof v);
    }
    return crc;
}

/* What a resumed run must share with the one that wrote the journal. */
static uint32_t fingerprint(const tsr_apply_opts_t *o, const apply_input_t *in)
{
    uint32_t crc = tsr_crc32(0, o->function, strlen(o->function) + 1);
    crc = tsr_crc32(crc, in->dset, strlen(in->dset) + 1);
    crc = file_print(crc, in->path);
    crc = file_print(crc, is_plugin(o->function) ? o->function : o->model);
    if (o->model)
        crc = tsr_crc32(crc, o->model, strlen(o->model) + 1);
    unsigned long long pr = o->partition_rows;
    crc = tsr_crc32(crc, &pr, sizeof pr);
    if (in->cols)
        crc = tsr_crc32(crc, in->cols, in->ncols * sizeof *in->cols);
    return crc;
}

/* Usage errors every rank finds alike (rank 0 reports them). */
static int check(const tsr_apply_opts_t *o)
{
    const char *f = o->function;
    int rows = strcmp(f, "predict") == 0 || strcmp(f, "normalize") == 0;
    if (strcmp(f, "stats") != 0 && !rows && !is_plugin(f))
        return tsr_error_set(TSR_EINVAL,
                             "apply: unknown function '%s'; expected stats, predict, normalize or a "
                             "plugin (a path to a .so)",
                             f);
    if (rows && !o->output)
        return tsr_error_set(TSR_EINVAL, "apply %s: give --output FILE.h5 for its rows", f);
    if (rows && o->stats_json)
        return tsr_error_set(TSR_EINVAL, "apply %s writes its rows to --output; -o is for stats and reductions", f);
    if (strcmp(f, "stats") == 0 && o->output)
        return tsr_error_set(TSR_EINVAL, "apply stats writes no HDF5 file: -o FILE.json writes its results");
    if (strcmp(f, "predict") == 0 && !o->model)
        return tsr_error_set(TSR_EINVAL, "apply predict: give the model (a model file or a registry id)");
    const char *inputs[] = {o->input, o->model, is_plugin(f) ? f : NULL};
    int rc = TSR_OK;
    if (o->output)
        rc = tsr_file_check_output(o->output, inputs, 3);
    if (rc == TSR_OK && o->stats_json)
        rc = tsr_file_check_output(o->stats_json, inputs, 3);
    return rc;
}

int tsr_apply_run(tsr_runtime_t *rt, const tsr_apply_opts_t *opts)
{
    MPI_Comm comm = tsr_runtime_world(rt);
    tsr_apply_opts_t o = *opts;
    o.partition_rows = o.partition_rows ? o.partition_rows : APPLY_DEFAULT_ROWS;
    apply_input_t in;
    int rc = apply_agree(comm, check(&o));
    if (rc)
        return rc;
    rc = apply_agree(comm, apply_input_open(&in, o.input, o.dataset, o.columns, o.ncolumns));
    if (rc)
        return rc;
    if (o.partition_rows > in.n) /* one partition: the same result, no buffer bigger than the data */
        o.partition_rows = in.n;
    uint32_t fp = fingerprint(&o, &in);
    double t0 = tsr_time_now();
    if (strcmp(o.function, "stats") == 0)
        rc = run_stats(comm, &o, &in, fp);
    else if (strcmp(o.function, "predict") == 0)
        rc = apply_predict(comm, &o, &in, fp);
    else if (strcmp(o.function, "normalize") == 0)
        rc = apply_normalize(comm, &o, &in, fp);
    else
        rc = run_plugin(comm, &o, &in, fp);
    /* One line for logs and benchmarks: rows, partitions, seconds from the
     * input's opening to the output's commit, and the input bytes per second. */
    double dt = tsr_time_now() - t0, mb = (double)in.n * (double)in.d * 4 / 1e6;
    if (rc == TSR_OK && tsr_runtime_rank(rt) == 0)
        fprintf(stderr, "tessera: apply %s: %zu rows x %zu columns, %zu partitions on %d ranks, %.3f s, %.1f MB/s\n",
                strcmp(o.function, "predict") == 0 || strcmp(o.function, "stats") == 0 ||
                        strcmp(o.function, "normalize") == 0
                    ? o.function
                    : "plugin",
                in.n, in.ncols, (in.n + o.partition_rows - 1) / o.partition_rows, tsr_runtime_size(rt), dt,
                dt > 0 ? mb / dt : 0);
    apply_input_close(&in);
    return rc;
}
