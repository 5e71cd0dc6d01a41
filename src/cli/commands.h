/* SPDX-License-Identifier: BSD-3-Clause */
/* Subcommands of the tessera program; main.c dispatches on argv[1]. Each
 * takes the subcommand's own argv (argv[0] is the subcommand name) and
 * returns 0 or a TSR_E* code after logging the error. */
#ifndef TESSERA_CLI_COMMANDS_H
#define TESSERA_CLI_COMMANDS_H
#include "tessera/runtime.h"

#include <stdio.h>

int tsr_cmd_train(tsr_runtime_t *rt, int argc, char **argv);
int tsr_cmd_topo(tsr_runtime_t *rt, int argc, char **argv);
int tsr_cmd_sweep(tsr_runtime_t *rt, int argc, char **argv);
int tsr_cmd_data(int argc, char **argv);
int tsr_cmd_ckpt(int argc, char **argv);
int tsr_cmd_serve(int argc, char **argv);
int tsr_cmd_export(int argc, char **argv);
int tsr_cmd_model(int argc, char **argv);
/* src/cli/cmd_trace.c: tessera trace merge. */
int tsr_cmd_trace(int argc, char **argv);
/* SLURM (src/cli/cmd_submit.c, cmd_jobs.c); TSR_ESCHED from these exits 5. */
int tsr_cmd_submit(int argc, char **argv);
int tsr_cmd_jobs(int argc, char **argv);
/* src/cli/cmd_launch.c: returns the process exit code itself (mpirun's, 130
 * after a forced stop) or a negative TSR_E* code. */
int tsr_cmd_launch(int argc, char **argv);
/* The task farm (src/cli/cmd_tasks.c: run, under MPI; cmd_tasks_client.c: submit, cancel, status). */
int tsr_cmd_tasks_run(tsr_runtime_t *rt, int argc, char **argv);
int tsr_cmd_tasks(int argc, char **argv);
void tsr_cmd_tasks_run_usage(FILE *out);
/* Distributed apply over an HDF5 dataset (src/cli/cmd_apply.c, under MPI). */
int tsr_cmd_apply(tsr_runtime_t *rt, int argc, char **argv);

/* src/cli/util.c: prints "tessera: error: <last error>" and returns rc;
 * whether s ends with suffix, ignoring case. */
int tsr_cli_fail(int rc);
/* The error for an option arg the command did not take: "needs a value"
 * when it is one of the NULL-terminated valued options, else "unknown
 * option"; returns TSR_EINVAL. */
int tsr_cli_bad_option(const char *cmd, const char *arg, const char *const *valued);
/* Whether s is one of the NULL-terminated list (NULL: none). */
int tsr_cli_in_list(const char *s, const char *const *list);
int tsr_cli_ends_with(const char *s, const char *suffix);

#endif
