/* SPDX-License-Identifier: BSD-3-Clause */
/* A user program that brings its own computation and uses tessera only for
 * checkpoints (in the style of SCR and VeloC), through the public C API.
 *
 * It solves 1-D heat diffusion on a rod with Jacobi iterations: each MPI
 * rank owns a contiguous slice of the rod plus one halo cell on each side,
 * exchanges halos with its neighbours every step, and updates
 *     u'[i] = u[i] + alpha * (u[i-1] - 2 u[i] + u[i+1])
 * with the rod's ends held at 0. Each rank keeps its own checkpoint
 * directory, <dir>/rank-<r>, and writes one file per checkpoint there (one
 * file per process, as SCR does): its slice (float64), the step counter
 * (int64) and a running checksum of the field (float64), every --every
 * steps, on tessera's writer thread.
 *
 * With --resume the ranks agree on a step that every one of them can
 * restore: each scans its own directory (tsr_ckpt_scan verifies every file),
 * the ranks take the MIN over their newest verified steps, and each restores
 * its file of that step. If some rank lacks a sound file of that step, they
 * try again below it; with no common step they start from the beginning.
 * Every rank therefore continues from the same step, and the result is
 * bit-identical to a run that was never interrupted.
 *
 * Usage: mpirun -n 3 tessera_ckpt_user [--steps N] [--every K] [--cells C]
 *            [--dir D] [--keep K] [--resume] [--kill-at STEP]
 * --kill-at STEP makes rank 1 kill itself with SIGKILL after that step, to
 * try the restart. The last lines (rank 0) are
 *     final sum: <the field's global sum, %.17g>
 *     checksum: <the sum of every step's field sums, %.17g> */
#include "tessera/ckpt.h"
#include "tessera/error.h"
#include "tessera/runtime.h"

#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ALPHA 0.25
#define PI 3.14159265358979323846

typedef struct {
    long steps, every, cells, kill_at;
    int keep, resume;
    const char *dir;
} options_t;

static int rank_g = 0;

static void fail(const char *what, int rc)
{
    fprintf(stderr, "ckpt_user[rank %d]: %s: %s (%s)\n", rank_g, what, tsr_last_error(), tsr_strerror(rc));
}

static int parse(int argc, char **argv, options_t *o)
{
    *o = (options_t){.steps = 2000, .every = 100, .cells = 4096, .kill_at = -1, .keep = 3, .dir = "ckpt_user"};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--resume")) {
            o->resume = 1;
            continue;
        }
        if (!v)
            return -1;
        if (!strcmp(a, "--steps"))
            o->steps = atol(v);
        else if (!strcmp(a, "--every"))
            o->every = atol(v);
        else if (!strcmp(a, "--cells"))
            o->cells = atol(v);
        else if (!strcmp(a, "--kill-at"))
            o->kill_at = atol(v);
        else if (!strcmp(a, "--keep"))
            o->keep = atoi(v);
        else if (!strcmp(a, "--dir"))
            o->dir = v;
        else
            return -1;
        i++;
    }
    return o->steps >= 0 && o->every >= 1 && o->cells >= 1 && o->keep >= 1 && o->dir[0] ? 0 : -1;
}

/* ---- resume: agree on a step every rank can restore ---- */

#define MAX_FOUND 1024

typedef struct {
    int n;
    long steps[MAX_FOUND]; /* newest first */
    char paths[MAX_FOUND][512];
    const char *config; /* this run's shape; files of another are skipped */
} found_t;

static int collect(const char *path, int rc, const tsr_ckpt_info_t *info, void *arg)
{
    found_t *f = arg;
    if (rc) {
        fprintf(stderr, "ckpt_user[rank %d]: skipping %s\n", rank_g, tsr_last_error());
        return 0;
    }
    if (!info->config || strcmp(info->config, f->config) != 0) {
        fprintf(stderr, "ckpt_user[rank %d]: skipping %s: written by another run shape (%s)\n", rank_g, path,
                info->config ? info->config : "?");
        return 0;
    }
    if (f->n < MAX_FOUND) {
        f->steps[f->n] = info->step;
        snprintf(f->paths[f->n], sizeof f->paths[0], "%s", path);
        f->n++;
    }
    return 0;
}

/* Restores the newest step every rank has a sound file of. Returns that
 * step, 0 if there is none (start from the beginning), or a negative error
 * code. Collective. */
static long agree_and_restore(tsr_ckpt_t *c, const char *dir, const char *config, int64_t *step_counter, MPI_Comm world)
{
    found_t *f = calloc(1, sizeof *f);
    long bound = LONG_MAX, result = 0;
    int rc = TSR_OK;
    if (!f) {
        rc = tsr_error_set(TSR_ENOMEM, "out of memory");
    } else {
        f->config = config;
        int removed = tsr_ckpt_clean_stale(dir);
        if (removed > 0)
            fprintf(stderr, "ckpt_user[rank %d]: removed %d temporary file(s) of a killed writer\n", rank_g, removed);
        int n = tsr_ckpt_scan(dir, collect, f);
        if (n < 0)
            rc = n;
    }
    /* Every rank must take part in every collective below, even one whose
     * scan failed: it just offers no step. */
    int ok_scan = rc == TSR_OK, all_scanned;
    MPI_Allreduce(&ok_scan, &all_scanned, 1, MPI_INT, MPI_LAND, world);
    if (!all_scanned) {
        if (rc)
            fail("scanning checkpoints", rc);
        free(f);
        return TSR_EIO;
    }
    for (;;) {
        long mine = -1, common;
        int idx = -1;
        for (int i = 0; i < f->n; i++)
            if (f->steps[i] <= bound) {
                mine = f->steps[i];
                break;
            }
        MPI_Allreduce(&mine, &common, 1, MPI_LONG, MPI_MIN, world);
        if (common < 0)
            break; /* some rank has nothing at or below bound */
        for (int i = 0; i < f->n && idx < 0; i++)
            if (f->steps[i] == common)
                idx = i;
        int ok = 0, all;
        if (idx >= 0) {
            tsr_ckpt_info_t info;
            /* Restore verifies again and changes nothing unless the whole
             * file is sound and fits the registered regions. */
            int r = tsr_ckpt_restore(c, f->paths[idx], &info);
            if (r)
                fail("restoring", r);
            else if (*step_counter != common || info.step != common)
                fprintf(stderr, "ckpt_user[rank %d]: %s: step counter %lld, file step %ld, expected %ld\n", rank_g,
                        f->paths[idx], (long long)*step_counter, info.step, common);
            else
                ok = 1;
            if (!r)
                tsr_ckpt_info_free(&info);
        } else {
            fprintf(stderr, "ckpt_user[rank %d]: no sound checkpoint of step %ld in %s\n", rank_g, common, dir);
        }
        MPI_Allreduce(&ok, &all, 1, MPI_INT, MPI_LAND, world);
        if (all) {
            result = common;
            break;
        }
        bound = common - 1; /* try an older common step */
    }
    free(f);
    return result;
}

/* ---- the solver ---- */

static void initial(double *u, long n, long first, long total)
{
    for (long i = 0; i < n; i++) {
        double x = ((double)(first + i) + 0.5) / (double)total;
        u[i] = sin(PI * x) + 0.5 * sin(7.0 * PI * x) + (x > 0.3 && x < 0.4 ? 1.0 : 0.0);
    }
}

/* Fills the halo cells u[0] and u[n+1] from the neighbours (0 at the rod's
 * ends). */
static void exchange(double *u, long n, int rank, int size, MPI_Comm w)
{
    int left = rank > 0 ? rank - 1 : MPI_PROC_NULL, right = rank < size - 1 ? rank + 1 : MPI_PROC_NULL;
    u[0] = 0.0;
    u[n + 1] = 0.0;
    MPI_Sendrecv(&u[1], 1, MPI_DOUBLE, left, 0, &u[n + 1], 1, MPI_DOUBLE, right, 0, w, MPI_STATUS_IGNORE);
    MPI_Sendrecv(&u[n], 1, MPI_DOUBLE, right, 1, &u[0], 1, MPI_DOUBLE, left, 1, w, MPI_STATUS_IGNORE);
}

/* The global sum of one value per rank, added in rank order on every rank
 * (so it does not depend on the reduction algorithm). */
static double ordered_sum(double mine, int size, MPI_Comm w, double *all)
{
    MPI_Allgather(&mine, 1, MPI_DOUBLE, all, 1, MPI_DOUBLE, w);
    double s = 0.0;
    for (int r = 0; r < size; r++)
        s += all[r];
    return s;
}

int main(int argc, char **argv)
{
    tsr_runtime_t *rt = NULL;
    tsr_ckpt_t *ck = NULL;
    options_t o;
    int rc = tsr_runtime_create(&argc, &argv, &rt);
    if (rc) {
        fprintf(stderr, "ckpt_user: %s\n", tsr_last_error());
        return 1;
    }
    int rank = tsr_runtime_rank(rt), size = tsr_runtime_size(rt), status = 1;
    MPI_Comm w = tsr_runtime_world(rt);
    rank_g = rank;
    if (parse(argc, argv, &o)) {
        if (rank == 0)
            fprintf(stderr, "usage: ckpt_user [--steps N] [--every K] [--cells C] [--dir D] [--keep K] [--resume] "
                            "[--kill-at STEP]\n");
        tsr_runtime_destroy(rt);
        return 2;
    }

    long n = o.cells, total = o.cells * size, first = o.cells * rank;
    double *u = calloc((size_t)n + 2, sizeof *u), *un = calloc((size_t)n + 2, sizeof *un);
    double *sums = calloc((size_t)size, sizeof *sums);
    int64_t step = 0;
    double checksum = 0.0;
    char dir[4096], config[256];
    snprintf(dir, sizeof dir, "%s/rank-%d", o.dir, rank);
    /* What a file must say about itself to fit this run. */
    snprintf(config, sizeof config, "heat1d ranks=%d rank=%d cells=%ld alpha=%g", size, rank, o.cells, ALPHA);

    /* One engine per rank, its own directory; register once. */
    tsr_ckpt_config_t cc = {.dir = dir, .keep = o.keep, .async = 1};
    size_t dn[1] = {(size_t)n}, d1[1] = {1};
    rc = u && un && sums ? TSR_OK : tsr_error_set(TSR_ENOMEM, "out of memory for %ld cells", n);
    if (!rc && (rc = tsr_ckpt_create(&cc, &ck)))
        fail("creating the checkpoint engine", rc);
    if (!rc && ((rc = tsr_ckpt_register(ck, "/heat/u", u + 1, TSR_CKPT_FLOAT64, 1, dn)) ||
                (rc = tsr_ckpt_register(ck, "/heat/step", &step, TSR_CKPT_INT64, 1, d1)) ||
                (rc = tsr_ckpt_register(ck, "/heat/checksum", &checksum, TSR_CKPT_FLOAT64, 1, d1))))
        fail("registering regions", rc);
    int ok = rc == TSR_OK, all_ok;
    MPI_Allreduce(&ok, &all_ok, 1, MPI_INT, MPI_LAND, w);
    if (!all_ok)
        goto out;

    long from = 0;
    if (o.resume) {
        from = agree_and_restore(ck, dir, config, &step, w);
        if (from < 0)
            goto out;
    }
    if (from == 0) {
        initial(u + 1, n, first, total);
        step = 0;
        checksum = 0.0;
    }
    if (rank == 0) {
        if (from > 0)
            printf("resumed from step %ld (every rank restored its %s/rank-<r>/ckpt-%010ld.h5)\n", from, o.dir, from);
        else
            printf("starting at step 0%s\n", o.resume ? " (no checkpoint common to every rank)" : "");
        printf("%d ranks x %ld cells, %ld steps, checkpoint every %ld\n", size, n, o.steps, o.every);
        fflush(stdout);
    }

    int write_failed = 0;
    while (step < o.steps) {
        exchange(u, n, rank, size, w);
        double local = 0.0;
        for (long i = 1; i <= n; i++) {
            un[i] = u[i] + ALPHA * (u[i - 1] - 2.0 * u[i] + u[i + 1]);
            local += un[i];
        }
        /* Copied back rather than swapped: the registered buffer is u. */
        memcpy(u + 1, un + 1, (size_t)n * sizeof *u);
        step++;
        checksum += local;
        if (step % o.every == 0) {
            /* tsr_ckpt_due(ck, step) would count from the engine's creation,
             * so after a resume its first checkpoint would come at once;
             * the cadence here is by absolute step instead. */
            int prev = tsr_ckpt_wait(ck); /* the previous write's result */
            if (prev && !write_failed++)
                fail("a checkpoint write failed (going on)", prev);
            tsr_ckpt_meta_t m = {.step = (long)step,
                                 .samples_seen = (long)step,
                                 .world_size = size,
                                 .config = config,
                                 .model = "heat1d jacobi"};
            if ((rc = tsr_ckpt_write(ck, &m, 0)) && !write_failed++)
                fail("starting a checkpoint write (going on)", rc);
        }
        if (rank == 1 && step == o.kill_at) {
            fprintf(stderr, "ckpt_user[rank 1]: killing myself after step %lld, as asked\n", (long long)step);
            raise(SIGKILL);
        }
    }
    if ((rc = tsr_ckpt_wait(ck)))
        fail("the last checkpoint write failed", rc);

    double field = 0.0;
    for (long i = 1; i <= n; i++)
        field += u[i];
    double gsum = ordered_sum(field, size, w, sums);
    double gchk = ordered_sum(checksum, size, w, sums);
    if (rank == 0) {
        printf("final sum: %.17g\n", gsum);
        printf("checksum: %.17g\n", gchk);
    }
    status = 0;
out:
    tsr_ckpt_destroy(ck);
    free(u);
    free(un);
    free(sums);
    tsr_runtime_destroy(rt);
    return status;
}
