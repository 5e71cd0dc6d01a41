/* SPDX-License-Identifier: BSD-3-Clause */
/* tessera sweep CONFIG --grid K=V1,V2 --random K=DIST:A:B --trials T --ranks-per-trial k [-o DIR] ... */
#include "cli/commands.h"
#include "tessera/error.h"
#include "tessera/sweep.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "usage: tessera sweep CONFIG [--grid section.key=v1,v2,...] [--random section.key=DIST] [--trials T]\n"
    "                     [--ranks-per-trial k] [-o DIR] [--asha R1,R2,...[:KEEP]] [--budget-trials N]\n"
    "                     [--budget-seconds S] [--seed S] [--set section.key=value ...]\n"
    "Trains many variants of CONFIG in one job: the ranks form groups of k, each group trains one trial\n"
    "at a time, and rank 0 hands trials out as groups finish.\n"
    "  --grid K=V1,V2,...        every value of K (repeatable: the grid is the product)\n"
    "  --random K=DIST           a draw per trial: uniform:A:B, loguniform:A:B, int:A:B, choice:a|b|c\n"
    "  --trials T                trials (trial t takes grid point t mod the grid's size); default: the grid\n"
    "  --ranks-per-trial k       ranks per trial (default 1); must divide the job's ranks\n"
    "  -o, --output DIR          results (trials.csv, trials.json) and each trial's model and checkpoints\n"
    "                            under DIR/trials/<t>/ (default: sweep)\n"
    "  --asha R1,R2,...[:KEEP]   successive halving: rungs in epochs; a trial goes on past a rung when it\n"
    "                            is in the best KEEP fraction there (default 0.33)\n"
    "  --budget-trials N         start at most N trials\n"
    "  --budget-seconds S        start or promote no trial after S seconds\n"
    "  --seed S                  the random parameters' seed (default 0)\n"
    "  --set K=VALUE             override a value for every trial (repeatable)\n"
    "Run again with the same DIR to resume: finished trials are kept, a trial under way resumes from\n"
    "its checkpoint. The best finished trial's model is registered in [serve] registry; with [serve]\n"
    "enabled, rank 0's coordinator answers GET /sweep.\n"
    "Exit codes: 0 done (failed trials are in the table), 2 bad usage or configuration,\n"
    "75 stopped by a signal after checkpoints (run again to resume), 1 other.\n";

typedef struct {
    const char **sets, **grid, **random;
    int nsets, ngrid, nrandom;
} lists_t;

static int number(const char *opt, const char *s, double lo, double *v)
{
    char *end;
    errno = 0;
    *v = strtod(s, &end);
    if (end == s || *end || errno || !isfinite(*v) || *v < lo)
        return tsr_error_set(TSR_EINVAL, "sweep: %s '%s': expected a number of at least %g", opt, s, lo);
    return TSR_OK;
}

static int whole(const char *opt, const char *s, double lo, long *v)
{
    double d;
    int rc = number(opt, s, lo, &d);
    if (!rc && (d != floor(d) || d > 1e15))
        rc = tsr_error_set(TSR_EINVAL, "sweep: %s '%s': expected a whole number", opt, s);
    *v = (long)d;
    return rc;
}

static int parse(int argc, char **argv, tsr_sweep_options_t *o, lists_t *l, int *help)
{
    static const char *const valued[] = {"--grid",   "--random", "--trials",        "--ranks-per-trial", "-o",
                                         "--output", "--asha",   "--budget-trials", "--budget-seconds",  "--seed",
                                         "--set",    NULL};
    long v;
    double d;
    int rc = TSR_OK;
    o->ranks_per_trial = 1;
    o->dir = "sweep";
    for (int i = 1; !rc && i < argc; i++) {
        const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            *help = 1;
            return TSR_OK;
        }
        if (!tsr_cli_in_list(a, valued) || !val) {
            if (a[0] == '-' && a[1])
                rc = tsr_cli_bad_option("sweep", a, valued);
            else if (o->config)
                rc = tsr_error_set(TSR_EINVAL, "sweep: unexpected argument '%s' after CONFIG %s", a, o->config);
            else
                o->config = a;
            continue;
        }
        i++;
        if (strcmp(a, "--grid") == 0)
            l->grid[l->ngrid++] = val;
        else if (strcmp(a, "--random") == 0)
            l->random[l->nrandom++] = val;
        else if (strcmp(a, "--set") == 0)
            l->sets[l->nsets++] = val;
        else if (strcmp(a, "-o") == 0 || strcmp(a, "--output") == 0)
            o->dir = val;
        else if (strcmp(a, "--asha") == 0)
            o->asha = val;
        else if (strcmp(a, "--budget-seconds") == 0)
            rc = number(a, val, 0, &o->budget_seconds);
        else if (strcmp(a, "--trials") == 0)
            rc = whole(a, val, 1, &o->trials);
        else if (strcmp(a, "--budget-trials") == 0)
            rc = whole(a, val, 1, &o->budget_trials);
        else if (strcmp(a, "--seed") == 0 && !(rc = number(a, val, 0, &d)))
            o->seed = (uint64_t)d;
        else if (strcmp(a, "--ranks-per-trial") == 0 && !(rc = whole(a, val, 1, &v)))
            o->ranks_per_trial = v > 1 << 20 ? 1 << 20 : (int)v;
    }
    if (!rc && !o->config)
        rc = tsr_error_set(TSR_EINVAL, "sweep: no CONFIG file given; see tessera sweep --help");
    if (!rc && !o->dir[0])
        rc = tsr_error_set(TSR_EINVAL, "sweep: -o needs a directory");
    return rc;
}

int tsr_cmd_sweep(tsr_runtime_t *rt, int argc, char **argv)
{
    tsr_sweep_options_t o = {0};
    tsr_sweep_result_t res;
    lists_t l = {0};
    int help = 0, failed = 0, rank = tsr_runtime_rank(rt), rc = TSR_OK;
    tsr_runtime_install_signals();
    size_t n = (size_t)argc + 1;
    l.sets = calloc(n, sizeof *l.sets);
    l.grid = calloc(n, sizeof *l.grid);
    l.random = calloc(n, sizeof *l.random);
    if (!l.sets || !l.grid || !l.random)
        rc = tsr_error_set(TSR_ENOMEM, "sweep: out of memory");
    if (!rc)
        rc = parse(argc, argv, &o, &l, &help);
    if (help) {
        if (rank == 0)
            fputs(usage, stdout);
        goto out;
    }
    o.sets = l.sets, o.nsets = l.nsets;
    o.grid = l.grid, o.ngrid = l.ngrid;
    o.random = l.random, o.nrandom = l.nrandom;
    if (!rc)
        rc = tsr_sweep_run(rt, &o, &res, &failed);
    if (rc == TSR_ESTOPPED)
        tsr_log(TSR_LOG_INFO, "sweep: stopped; trials under way checkpointed; run the same command to resume");
    else if (rc && rank == failed)
        tsr_log(TSR_LOG_ERROR, "%s", tsr_last_error());
    else if (!rc && res.best >= 0)
        tsr_log(TSR_LOG_INFO,
                "sweep done: %ld trials (%ld done, %ld pruned, %ld failed, %ld skipped) in %.1f s; best trial %ld: "
                "test accuracy %.2f%% loss %.4f%s%s; table %s/trials.csv",
                res.trials, res.done, res.pruned, res.failed, res.skipped, res.wall_seconds, res.best,
                100 * res.best_accuracy, res.best_loss, res.best_id[0] ? ", registered as " : "", res.best_id, o.dir);
    else if (!rc)
        tsr_log(TSR_LOG_INFO, "sweep done: %ld trials (%ld failed, %ld skipped), none finished; table %s/trials.csv",
                res.trials, res.failed, res.skipped, o.dir);
out:
    free(l.sets);
    free(l.grid);
    free(l.random);
    return rc;
}
