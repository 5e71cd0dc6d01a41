/* SPDX-License-Identifier: BSD-3-Clause */
/* Starting and reaping shell task processes (internal). */
#ifndef TSR_TASKS_EXEC_H
#define TSR_TASKS_EXEC_H
#include "tasks/table.h"

#include <sched.h>
#include <sys/types.h>

typedef struct exec_req {
    const char *cmd;
    const char *cwd;       /* NULL: the rank's */
    const char *out, *err; /* files (made with their directories; truncated) */
    char *const *envp;
    const cpu_set_t *cpus; /* NULL: the rank's */
} exec_req_t;

/* Starts the task in a new process group; returns its pid and a pidfd
 * (-1 where the kernel has none). A task that cannot start gives -1, *code
 * 126 or 127 and the reason in msg (also written to its stderr file). */
pid_t exec_spawn(const exec_req_t *r, int *pidfd, int *code, char *msg, size_t msglen);
/* 1 when pid has ended (*how, *code as in table.h; the rest of its group
 * is killed), 0 while it runs. */
int exec_reap(pid_t pid, int *how, int *code);
/* The last whole lines of a file, at most len - 1 bytes, printable. */
void exec_tail(const char *path, char *buf, size_t len);

#endif
