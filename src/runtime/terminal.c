/* SPDX-License-Identifier: BSD-3-Clause */
/* Whether output reaches a terminal, judged by what the launcher writes to:
 * Open MPI gives each rank a pseudo-terminal of its own even when
 * `mpirun ... > log` sends everything to a file. */
#include "tessera/runtime.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

/* Launchers that relay a rank's pty to their own output (Open MPI's mpirun,
 * its daemons on other nodes, and PRRTE's). srun relays the rank's output
 * as it is, so under srun the rank's own stdout is what the job log is. */
static const char *const relays[] = {"mpirun", "mpiexec", "orterun", "orted", "prterun", "prted", "prte", NULL};

/* Whether /proc/PID/fd/FD is a terminal. */
static int proc_fd_is_tty(pid_t pid, int fd)
{
    char path[64];
    struct stat st;
    snprintf(path, sizeof path, "/proc/%ld/fd/%d", (long)pid, fd);
    if (stat(path, &st) != 0 || !S_ISCHR(st.st_mode))
        return 0;
    /* A character device: only a terminal answers isatty. O_NONBLOCK and
     * O_NOCTTY so opening it neither waits nor adopts it. */
    int f = open(path, O_RDONLY | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
    if (f < 0)
        return major(st.st_rdev) != 1; /* not /dev/null and kin */
    int tty = isatty(f);
    close(f);
    return tty;
}

int tsr_runtime_stdout_is_terminal(void)
{
    if (!isatty(STDOUT_FILENO))
        return 0;
    pid_t parent = getppid();
    char path[64], comm[64] = "";
    snprintf(path, sizeof path, "/proc/%ld/comm", (long)parent);
    FILE *f = fopen(path, "r");
    if (f) {
        if (!fgets(comm, sizeof comm, f))
            comm[0] = '\0';
        fclose(f);
    }
    comm[strcspn(comm, "\n")] = '\0';
    for (int i = 0; relays[i]; i++)
        if (strcmp(comm, relays[i]) == 0)
            return proc_fd_is_tty(parent, STDOUT_FILENO);
    return 1;
}
