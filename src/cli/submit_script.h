/* SPDX-License-Identifier: BSD-3-Clause */
/* The batch script of tessera submit (internal to the CLI). */
#ifndef TSR_CLI_SUBMIT_SCRIPT_H
#define TSR_CLI_SUBMIT_SCRIPT_H
#include "tessera/runtime.h"

/* TSR_EINVAL naming where (an option or config origin) if value cannot go
 * into a #SBATCH line: a newline or other control byte would end the line
 * (and start a shell command), and sbatch has no escape for it. */
int tsr_submit_check_directive(const char *value, const char *where);

/* The script (malloc'd, NULL when out of memory): #SBATCH lines for what
 * job asks for, so that `sbatch` on the printed script asks for the same as
 * the libslurm submission, then exe, mpi, config and `--set sets[i]...` as
 * the variables and arguments of jobs/train.sbatch's run-and-requeue lines
 * (srun of `exe train config ...`, requeue on exit 75), which follow
 * verbatim. Every string reaches the shell single-quoted and
 * the #SBATCH lines double-quoted (values checked with
 * tsr_submit_check_directive first); comments show them escaped. */
char *tsr_submit_script(const tsr_slurm_job_t *job, const char *exe, const char *config, char **sets, int nsets,
                        const char *mpi);

#endif
