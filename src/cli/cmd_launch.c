/* SPDX-License-Identifier: BSD-3-Clause */
/* tessera launch [MPIRUN OPTIONS] [--] COMMAND [ARGS]: mpirun with the
 * signals users stop jobs with turned into what tessera promises.
 *
 * Open MPI's mpirun cannot forward SIGTERM or SIGINT (ess_base_forward_
 * signals refuses them): on either it kills the job itself and exits 1,
 * and SIGKILLs ranks still busy with a checkpoint after a second. It does
 * forward SIGUSR1. So this helper runs mpirun in a process group of its own
 * (the terminal's Ctrl-C reaches only the helper) and turns the first
 * SIGTERM, SIGINT or SIGHUP into a SIGUSR1 for mpirun: every rank then
 * checkpoints at its next step and exits 75, and so does the helper. A
 * second SIGINT stops at once: mpirun gets SIGUSR2, which it forwards too
 * and on which every rank exits at once (then SIGINT, which makes mpirun
 * kill what is left); the helper then removes what Open MPI 4 leaves
 * behind after killed ranks on this node (the job's session directory and
 * its shared-memory segments). */
#include "cli/commands.h"
#include "tessera/error.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char usage[] =
    "usage: tessera launch [MPIRUN OPTIONS] [--] COMMAND [ARGS]\n"
    "Runs 'mpirun MPIRUN OPTIONS tessera COMMAND ARGS' (mpirun from $TSR_MPIRUN, else PATH) and\n"
    "turns the first SIGTERM, SIGINT (Ctrl-C) or SIGHUP into a checkpoint: every rank stops at its\n"
    "next step, writes a checkpoint and exits 75 (requeue), as does this command. A second SIGINT\n"
    "stops at once (exit 130) and removes what Open MPI leaves behind from killed ranks.\n"
    "Example: tessera launch -n 4 train run.ini\n";

static const char *const commands[] = {"train", "topo", "tasks", "apply", "sweep", "data", "ckpt", "version", NULL};

static volatile sig_atomic_t pending_sig = 0, stops = 0, sigints = 0, alarms = 0;

static void on_signal(int sig)
{
    if (sig == SIGALRM) {
        alarms++;
        return;
    }
    if (sig == SIGINT)
        sigints++;
    stops++;
    pending_sig = sig;
}

static int is_command(const char *s)
{
    for (int i = 0; commands[i]; i++)
        if (strcmp(s, commands[i]) == 0)
            return 1;
    return 0;
}

/* Removes dir and everything under it (a session directory: no links out). */
static void remove_tree(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char p[PATH_MAX];
    while (d && (e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        struct stat st;
        if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
            remove_tree(p);
        else
            unlink(p);
    }
    if (d)
        closedir(d);
    rmdir(dir);
}

/* Open MPI 4 keeps a job's files in TMPDIR/ompi.HOST.UID/pid.MPIRUN_PID,
 * and each rank's shared-memory segment in
 * /dev/shm/vader_segment.HOST.UID.JOBID.LOCALRANK, JOBID in hex; the PMIx
 * store in the session directory names JOBID in decimal (smseg-JOBID-0).
 * Both are the killed job's alone. Says what went. */
static void clean_after(pid_t mpirun)
{
    char host[256] = "", base[PATH_MAX - 512], session[PATH_MAX - 256], dstore[PATH_MAX];
    const char *tmp = getenv("TMPDIR");
    unsigned long jobid = 0;
    int removed = 0;
    gethostname(host, sizeof host - 1);
    snprintf(base, sizeof base, "%s/ompi.%s.%u", tmp && tmp[0] ? tmp : "/tmp", host, (unsigned)getuid());
    snprintf(session, sizeof session, "%s/pid.%ld", base, (long)mpirun);
    snprintf(dstore, sizeof dstore, "%s/pmix_dstor_ds21_%ld", session, (long)mpirun);
    DIR *d = opendir(dstore);
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (sscanf(e->d_name, "smseg-%lu-", &jobid) == 1)
            break;
    if (d)
        closedir(d);
    if (jobid) {
        char prefix[320];
        int n = snprintf(prefix, sizeof prefix, "vader_segment.%s.%u.%lx.", host, (unsigned)getuid(), jobid);
        d = opendir("/dev/shm");
        while (d && n > 0 && (e = readdir(d))) {
            char p[PATH_MAX];
            if (strncmp(e->d_name, prefix, (size_t)n) != 0)
                continue;
            snprintf(p, sizeof p, "/dev/shm/%s", e->d_name);
            removed += unlink(p) == 0;
        }
        if (d)
            closedir(d);
    }
    struct stat st;
    int had_session = stat(session, &st) == 0;
    if (had_session) {
        remove_tree(session);
        rmdir(base); /* only if no other job uses it */
    }
    if (had_session || removed)
        fprintf(stderr,
                "tessera: launch: removed what Open MPI left from the killed ranks on this node: %s%s%d "
                "shared-memory segment%s\n",
                had_session ? session : "", had_session ? " and " : "", removed, removed == 1 ? "" : "s");
}

int tsr_cmd_launch(int argc, char **argv)
{
    int split = -1;
    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        fputs(usage, stdout);
        return TSR_OK;
    }
    for (int i = 1; i < argc && split < 0; i++)
        if (strcmp(argv[i], "--") == 0 || is_command(argv[i]))
            split = i;
    if (split < 0 || (strcmp(argv[split], "--") == 0 && split + 1 >= argc))
        return tsr_cli_fail(tsr_error_set(TSR_EINVAL, "launch: no tessera COMMAND given (train, topo, tasks, ...); "
                                                      "see tessera launch --help"));
    int skip = strcmp(argv[split], "--") == 0;
    char self[PATH_MAX];
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    if (len <= 0)
        return tsr_cli_fail(
            tsr_error_set(TSR_ESYS, "launch: cannot find this program (/proc/self/exe): %s", strerror(errno)));
    self[len] = '\0';
    const char *mpirun = getenv("TSR_MPIRUN") && getenv("TSR_MPIRUN")[0] ? getenv("TSR_MPIRUN") : "mpirun";
    char **args = calloc((size_t)argc + 2, sizeof *args);
    if (!args)
        return tsr_cli_fail(tsr_error_set(TSR_ENOMEM, "launch: out of memory"));
    int n = 0;
    args[n++] = (char *)mpirun;
    for (int i = 1; i < split; i++)
        args[n++] = argv[i];
    args[n++] = self;
    for (int i = split + skip; i < argc; i++)
        args[n++] = argv[i];
    args[n] = NULL;

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    int sigs[] = {SIGTERM, SIGINT, SIGHUP, SIGALRM};
    for (size_t i = 0; i < sizeof sigs / sizeof *sigs; i++)
        sigaction(sigs[i], &sa, NULL);
    pid_t pid = fork();
    if (pid < 0) {
        free(args);
        return tsr_cli_fail(tsr_error_set(TSR_ESYS, "launch: fork failed: %s", strerror(errno)));
    }
    if (pid == 0) {
        setpgid(0, 0); /* the terminal's Ctrl-C reaches the helper, not mpirun */
        signal(SIGTERM, SIG_DFL);
        signal(SIGINT, SIG_DFL);
        signal(SIGHUP, SIG_DFL);
        execvp(mpirun, args);
        fprintf(stderr, "tessera: error: launch: cannot run %s: %s (set TSR_MPIRUN)\n", mpirun, strerror(errno));
        _exit(127);
    }
    setpgid(pid, pid);
    free(args);
    int status = 0, forced = 0, asked = 0;
    sig_atomic_t alarms_seen = 0;
    /* Polled, so no signal is missed between a check and the wait. */
    for (;;) {
        pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid)
            break;
        if (w < 0 && errno != EINTR) {
            status = 1 << 8;
            break;
        }
        if (stops && !asked) {
            asked = 1;
            fprintf(stderr,
                    "tessera: launch: signal %d: asking every rank to checkpoint at its next step and exit "
                    "75%s\n",
                    (int)pending_sig, pending_sig == SIGINT ? " (Ctrl-C again stops at once)" : "");
            kill(pid, SIGUSR1);
        } else if (sigints >= 2 && !forced) {
            forced = 1;
            fprintf(stderr, "tessera: launch: second SIGINT: stopping every rank now, without a checkpoint\n");
            kill(pid, SIGUSR2);
            alarm(5); /* then mpirun's own kill, if ranks are still there */
        } else if (forced && alarms != alarms_seen) {
            alarms_seen = alarms;
            kill(pid, forced++ == 1 ? SIGINT : SIGKILL);
            alarm(5);
        }
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    alarm(0);
    if (forced) {
        clean_after(pid);
        return 130;
    }
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    return 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}
