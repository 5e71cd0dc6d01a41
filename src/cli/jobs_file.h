/* SPDX-License-Identifier: BSD-3-Clause */
/* The list of jobs tessera submit sent, for tessera jobs (internal to the CLI). */
#ifndef TSR_CLI_JOBS_FILE_H
#define TSR_CLI_JOBS_FILE_H
#include <stddef.h>

/* $TESSERA_STATE_DIR/jobs, or ${XDG_STATE_HOME:-$HOME/.local/state}/tessera/jobs.
 * Lines: "JOBID<TAB>UNIX_TIME<TAB>CONFIG<TAB>WORKDIR". Returns 0 or -1. */
int tsr_jobs_file_path(char *buf, size_t n, int create_dir);
/* Appends one line in a single write. Returns 0 or a TSR_E* code. */
int tsr_jobs_file_add(unsigned long job_id, const char *config, const char *workdir);

#endif
