/* SPDX-License-Identifier: BSD-3-Clause */
/* The tessera program: one binary, started on every rank. */
#include "cli/commands.h"
#include "tessera/error.h"
#include "tessera/runtime.h"

#include <stdio.h>
#include <string.h>

static const char usage[] =
    "usage: tessera COMMAND [ARGS]\n"
    "Commands:\n"
    "  train CONFIG [--set section.key=value ...]   train a model data-parallel on every rank\n"
    "  topo [--bind]                                 print each rank's host, cores and NUMA node\n"
    "  data convert ... | data info FILE             convert CSV/IDX files to tessera's HDF5 format\n"
    "  ckpt list DIR | ckpt verify FILE...          show checkpoints and check them\n"
    "  serve MODEL_OR_REGISTRY [--port P ...]        serve predictions and the registry over HTTP\n"
    "  export MODEL [--format onnx|hdf5] -o OUT      write a model as ONNX or HDF5\n"
    "  model summary CONFIG|MODEL                    layers, output shapes, parameters and FLOPs of a model\n"
    "  submit CONFIG [--nodes N --time T ...]        submit a SLURM batch job that trains CONFIG\n"
    "  jobs [--all] [JOBID...]                       show the state of jobs tessera submit sent\n"
    "  launch [MPIRUN OPTIONS] COMMAND [ARGS]        mpirun, with SIGTERM/SIGINT turned into checkpoint-and-stop\n"
    "  sweep CONFIG --grid K=V1,V2 ...               hyperparameter trials on groups of ranks in one job\n"
    "  tasks run TASKFILE [--journal DIR ...]        run a task farm on every rank (submit, cancel, status)\n"
    "  trace merge -o OUT FILE...                    join the per-rank timelines of [monitor] trace\n"
    "  apply FUNCTION --input FILE[:/DSET] ...       stats, predict, normalize or a plugin over a dataset's rows\n"
    "  version                                       print the version\n"
    "Run under mpirun, srun or alone. 'tessera COMMAND --help' describes a command.\n"
    "Exit codes: 0 success, 1 internal or MPI failure, 2 bad usage or configuration,\n"
    "3 bad input data, 4 file I/O failure, 5 SLURM refused the job or cannot be reached,\n"
    "6 training diverged (NaN or Inf weights),\n"
    "7 tessera tasks: some tasks failed, were skipped or cancelled,\n"
    "75 checkpointed and stopped by a signal or the walltime margin (requeue), 76 a rank stalled,\n"
    "130 stopped at once without a checkpoint (a second SIGINT, or SIGUSR2).\n"
    "See man tessera.\n";

/* The documented exit code (error.h). */
static int exit_code(int rc) { return tsr_error_exit_code(rc); }

/* Commands that need MPI run inside a runtime; the rest do not start MPI. */
static int with_runtime(int (*cmd)(tsr_runtime_t *, int, char **), int *argc, char ***argv)
{
    tsr_runtime_t *rt = NULL;
    int rc = tsr_runtime_create(argc, argv, &rt);
    if (rc) {
        fprintf(stderr, "tessera: error: %s\n", tsr_last_error());
        return tsr_error_exit_code(rc);
    }
    rc = cmd(rt, *argc - 1, *argv + 1);
    tsr_runtime_destroy(rt);
    return tsr_error_exit_code(rc);
}

static const char version_usage[] = "usage: tessera version\nPrints the version (also: tessera --version).\n";

static int cmd_version(int argc, char **argv)
{
    if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        fputs(version_usage, stdout);
        return TSR_OK;
    }
    if (argc > 1)
        return tsr_cli_fail(tsr_error_set(TSR_EINVAL, "version: unknown %s '%s'; it takes none",
                                          argv[1][0] == '-' ? "option" : "argument", argv[1]));
    printf("tessera %s\n", TSR_VERSION);
    return TSR_OK;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fputs(usage, stderr);
        fprintf(stderr, "tessera: error: no command given; expected one of the commands above\n");
        return 2;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
        fputs(usage, stdout);
        return 0;
    }
    if (strcmp(argv[1], "version") == 0 || strcmp(argv[1], "--version") == 0)
        return exit_code(cmd_version(argc - 1, argv + 1));
    if (strcmp(argv[1], "train") == 0) {
        /* Before MPI_Init, which can take a while under srun: a stop or
         * walltime signal in that window would otherwise kill the rank
         * (default action) instead of stopping it at its first step. */
        tsr_runtime_install_signals();
        return with_runtime(tsr_cmd_train, &argc, &argv);
    }
    if (strcmp(argv[1], "sweep") == 0) {
        tsr_runtime_install_signals(); /* before MPI_Init, as for train */
        return with_runtime(tsr_cmd_sweep, &argc, &argv);
    }
    if (strcmp(argv[1], "tasks") == 0) {
        if (argc > 2 && strcmp(argv[2], "run") == 0) {
            tsr_runtime_install_signals(); /* before MPI_Init, as for train */
            return with_runtime(tsr_cmd_tasks_run, &argc, &argv);
        }
        return exit_code(tsr_cmd_tasks(argc - 1, argv + 1));
    }
    if (strcmp(argv[1], "apply") == 0)
        return with_runtime(tsr_cmd_apply, &argc, &argv);
    if (strcmp(argv[1], "topo") == 0)
        return with_runtime(tsr_cmd_topo, &argc, &argv);
    if (strcmp(argv[1], "ckpt") == 0)
        return tsr_error_exit_code(tsr_cmd_ckpt(argc - 1, argv + 1));
    if (strcmp(argv[1], "serve") == 0)
        return tsr_error_exit_code(tsr_cmd_serve(argc - 1, argv + 1));
    if (strcmp(argv[1], "export") == 0)
        return tsr_error_exit_code(tsr_cmd_export(argc - 1, argv + 1));
    if (strcmp(argv[1], "model") == 0)
        return tsr_error_exit_code(tsr_cmd_model(argc - 1, argv + 1));
    if (strcmp(argv[1], "submit") == 0)
        return exit_code(tsr_cmd_submit(argc - 1, argv + 1));
    if (strcmp(argv[1], "jobs") == 0)
        return exit_code(tsr_cmd_jobs(argc - 1, argv + 1));
    if (strcmp(argv[1], "trace") == 0)
        return exit_code(tsr_cmd_trace(argc - 1, argv + 1));
    if (strcmp(argv[1], "launch") == 0) {
        int rc = tsr_cmd_launch(argc - 1, argv + 1);
        return rc < 0 ? exit_code(rc) : rc;
    }
    if (strcmp(argv[1], "data") == 0) {
        int rc = tsr_cmd_data(argc - 1, argv + 1);
        return tsr_error_exit_code(rc);
    }
    fprintf(
        stderr,
        "tessera: error: unknown %s '%s'; expected train, topo, data, ckpt, serve, export, model, submit, jobs, launch, tasks, trace, sweep, apply or version (see tessera --help)\n",
        argv[1][0] == '-' ? "option" : "command", argv[1]);
    return 2;
}
