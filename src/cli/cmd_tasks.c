/* SPDX-License-Identifier: BSD-3-Clause */
/* `tessera tasks run TASKFILE`: the task farm on every rank (MPI).
 * submit, cancel and status talk to a running farm's coordinator or read
 * a journal (cmd_tasks_client.c). */
#include "cli/commands.h"
#include "tessera/trace.h"
#include "tessera/config.h"
#include "tessera/options.h"
#include "tessera/error.h"
#include "tessera/serve.h"
#include "tessera/tasks.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage_run[] =
    "usage: tessera tasks run TASKFILE [--journal DIR] [options]   (under mpirun -n N or srun)\n"
    "\n"
    "Runs the tasks of TASKFILE on every rank's cores: rank 0 dispatches, each rank runs tasks in\n"
    "process groups bound to the cores they ask for. TASKFILE has one task per line: a shell\n"
    "command, or a JSON object with cmd and id, priority, after, retries, backoff, timeout, cores,\n"
    "gpus, env, cwd, tags, stdout, stderr, each. {1..100} and {a,b} in a command make a sweep.\n"
    "  --journal DIR          record every state change in DIR/journal; run again on it to finish\n"
    "                         what is left (succeeded tasks never run again)\n"
    "  --output-dir D         task stdout/stderr files, ID.out and ID.err (default DIR/output with a\n"
    "                         journal, else tasks-output)\n"
    "  --retry-failed         on a journal: run failed, skipped and cancelled tasks again\n"
    "  --keep-alive           keep running when every task is final (tasks can be submitted)\n"
    "  --drain S              after SIGTERM/SIGUSR1/the walltime margin, running tasks may finish\n"
    "                         for S seconds, then are stopped (default 60)\n"
    "  --kill-grace S         SIGTERM to SIGKILL on timeouts, cancels and stops (default 5)\n"
    "  --walltime-margin S    under SLURM, stop S seconds before the job's end (default 120; -1 off)\n"
    "  --gpus-per-rank N      GPUs per rank (default: CUDA_VISIBLE_DEVICES, else the node's, split)\n"
    "  --reserve-core         rank 0 keeps one of its cores for dispatching\n"
    "  --fsync-ms MS          journal group commit interval (default 5)\n"
    "  --progress S           seconds between progress lines (default 10; 0 none)\n"
    "  --trace FILE           each rank's timeline of its tasks as Chrome trace JSON (FILE with the rank\n"
    "                         in its name: t.json -> t.rank0.json); merge with tessera trace merge\n"
    "  --serve                start the HTTP coordinator on rank 0 (GET /tasks, POST /tasks, ...)\n"
    "  --bind ADDR --port P --token-file F --run-dir D --config FILE --set serve.K=V\n"
    "                         the coordinator's settings, as for tessera serve\n"
    "Exit codes: 0 all succeeded, 7 some failed, were skipped or cancelled, 75 stopped (run again on the\n"
    "journal), 2 bad usage, 3 bad task file or journal, 4 journal I/O (full disk).\n";

void tsr_cmd_tasks_run_usage(FILE *out) { fputs(usage_run, out); }

static int number(const char *opt, const char *v, double lo, double hi, double *out)
{
    char *end;
    double x = strtod(v, &end);
    if (end == v || *end || !isfinite(x) || x < lo || x > hi)
        return tsr_error_set(TSR_EINVAL, "tasks run: %s %s: expected a number from %g to %g", opt, v, lo, hi);
    *out = x;
    return TSR_OK;
}

/* --trace: this rank's timeline of its tasks (a file that cannot be
 * written is a warning; the farm runs without it). */
static tsr_trace_t *start_trace(const char *path, int rank)
{
    char file[4096];
    tsr_trace_t *t = NULL;
    int rc = tsr_trace_path(path, rank, file, sizeof file);
    if (!rc && !(rc = tsr_trace_create(file, rank, 65536, 16, &t)))
        rc = tsr_trace_write(t);
    if (rc) {
        tsr_log(TSR_LOG_WARN, "tasks run: no timeline: %s; the tasks run without it", tsr_last_error());
        tsr_trace_destroy(t);
        return NULL;
    }
    tsr_trace_set_current(t);
    return t;
}

int tsr_cmd_tasks_run(tsr_runtime_t *rt, int argc, char **argv)
{
    tsr_tasks_run_opts_t o;
    tsr_tasks_run_opts_default(&o);
    tsr_config_t *conf = NULL;
    const char *bind = NULL, *token = NULL, *run_dir = NULL, *port = NULL, *trace = NULL;
    int serve = 0, rc = tsr_config_create(&conf), rank = tsr_runtime_rank(rt);
    double v;
    /* argv[0] is "tasks", argv[1] "run" */
    for (int i = 2; i < argc && rc == TSR_OK; i++) {
        const char *a = argv[i];
        int has = i + 1 < argc;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            if (rank == 0)
                fputs(usage_run, stdout);
            tsr_config_destroy(conf);
            return TSR_OK;
        } else if (strcmp(a, "--journal") == 0 && has) {
            o.journal_dir = argv[++i];
        } else if (strcmp(a, "--output-dir") == 0 && has) {
            o.output_dir = argv[++i];
        } else if (strcmp(a, "--retry-failed") == 0) {
            o.retry_failed = 1;
        } else if (strcmp(a, "--keep-alive") == 0) {
            o.keep_alive = 1;
        } else if (strcmp(a, "--reserve-core") == 0) {
            o.reserve_core = 1;
        } else if (strcmp(a, "--drain") == 0 && has) {
            rc = number(a, argv[++i], 0, 1e7, &o.drain_s);
        } else if (strcmp(a, "--kill-grace") == 0 && has) {
            rc = number(a, argv[++i], 0, 3600, &o.kill_grace_s);
        } else if (strcmp(a, "--walltime-margin") == 0 && has) {
            rc = number(a, argv[++i], -1, 1e7, &o.walltime_margin_s);
        } else if (strcmp(a, "--gpus-per-rank") == 0 && has) {
            if ((rc = number(a, argv[++i], 0, 256, &v)) == TSR_OK)
                o.gpus_per_rank = (int)v;
        } else if (strcmp(a, "--fsync-ms") == 0 && has) {
            rc = number(a, argv[++i], 0, 60000, &o.fsync_ms);
        } else if (strcmp(a, "--progress") == 0 && has) {
            rc = number(a, argv[++i], 0, 1e7, &o.progress_s);
        } else if (strcmp(a, "--serve") == 0) {
            serve = 1;
        } else if (strcmp(a, "--trace") == 0 && has) {
            trace = argv[++i];
        } else if (strcmp(a, "--bind") == 0 && has) {
            bind = argv[++i], serve = 1;
        } else if (strcmp(a, "--port") == 0 && has) {
            port = argv[++i], serve = 1;
        } else if (strcmp(a, "--token-file") == 0 && has) {
            token = argv[++i], serve = 1;
        } else if (strcmp(a, "--run-dir") == 0 && has) {
            run_dir = argv[++i];
        } else if (strcmp(a, "--config") == 0 && has) {
            rc = tsr_config_load(conf, argv[++i]);
        } else if (strcmp(a, "--set") == 0 && has) {
            rc = tsr_config_set(conf, argv[++i]);
        } else if (a[0] == '-') {
            rc = tsr_error_set(TSR_EINVAL, "tasks run: unknown option '%s' (see tessera tasks run --help)", a);
        } else if (o.taskfile) {
            rc = tsr_error_set(TSR_EINVAL, "tasks run: unexpected argument '%s' (see tessera tasks run --help)", a);
        } else {
            o.taskfile = a;
        }
    }
    if (rc == TSR_OK && !o.taskfile)
        rc = tsr_error_set(TSR_EINVAL, "tasks run: expected a task file (see tessera tasks run --help)");
    char portset[64];
    if (rc == TSR_OK && port && snprintf(portset, sizeof portset, "serve.port=%s", port) < (int)sizeof portset)
        rc = tsr_config_set(conf, portset);
    tsr_serve_config_t sc;
    if (rc == TSR_OK && (rc = tsr_options_serve(conf, &sc)) == TSR_OK) {
        sc.bind = bind ? bind : sc.bind;
        sc.token_file = token ? token : sc.token_file;
        sc.run_dir = run_dir ? run_dir : sc.run_dir;
        sc.registry = ""; /* a farm serves no models */
        o.serve = serve ? &sc : NULL;
    }
    tsr_trace_t *tr = rc == TSR_OK && trace ? start_trace(trace, rank) : NULL;
    if (rc == TSR_OK)
        rc = tsr_tasks_run(rt, &o);
    else if (rank != 0)
        tsr_error_clear(); /* every rank read the same arguments: rank 0 says what is wrong */
    if (tr) {
        tsr_trace_set_current(NULL);
        if (tsr_trace_write(tr))
            tsr_log(TSR_LOG_WARN, "tasks run: timeline: %s", tsr_last_error());
        tsr_trace_destroy(tr);
    }
    /* ETASKS and ESTOPPED were explained by the summary; an error by one line. */
    if (rc && rc != TSR_ETASKS && rc != TSR_ESTOPPED && tsr_last_error()[0])
        fprintf(stderr, "tessera: error: %s\n", tsr_last_error());
    tsr_config_destroy(conf);
    return rc;
}
