/* SPDX-License-Identifier: BSD-3-Clause */
/* Starting a shell task: vfork (no copy of the farm's address space, as
 * posix_spawn does it), then in the child a process group of its own, death
 * with its rank (PR_SET_PDEATHSIG), stdin from /dev/null, stdout/stderr
 * to its files, its directory, its cores, default signal handling, exec.
 * A command without shell syntax is exec'd directly (no shell start-up);
 * one the PATH lacks falls back to /bin/sh -c, so shell builtins work and a
 * missing command ends with the shell's 127 and its message. */
#include "tasks/exec.h"
#include "common/fileutil.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

enum { MAX_ARGS = 256 };

typedef struct child_args {
    char *const *argv;   /* direct exec, or NULL */
    char *const *shargv; /* /bin/sh -c cmd */
    char *const *envp;
    const char *cwd;
    int fd_in, fd_out, fd_err;
    const cpu_set_t *cpus;
    const int *sigs;
    int nsigs;
    pid_t parent;
    volatile int stage, err; /* written by the child: what failed */
} child_args_t;

static int reset_sigs[64], nreset = -1;

/* Signals whose handling the farm changed (handlers, ignored): the child
 * puts them back to the default. Asked once. */
static void find_handled(void)
{
    nreset = 0;
    for (int s = 1; s < 64 && nreset < 64; s++) {
        struct sigaction sa;
        if (s == SIGKILL || s == SIGSTOP || sigaction(s, NULL, &sa) != 0)
            continue;
        if (sa.sa_handler != SIG_DFL)
            reset_sigs[nreset++] = s;
    }
}

__attribute__((noreturn, noinline)) static void child(child_args_t *a)
{
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != a->parent)
        _exit(137); /* the rank died before the prctl */
    if (dup2(a->fd_in, 0) < 0 || dup2(a->fd_out, 1) < 0 || dup2(a->fd_err, 2) < 0) {
        a->err = errno;
        a->stage = 1;
        _exit(126);
    }
    if (a->cwd && chdir(a->cwd) != 0) {
        a->err = errno;
        a->stage = 2;
        _exit(126);
    }
    if (a->cpus)
        sched_setaffinity(0, sizeof *a->cpus, a->cpus);
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    for (int i = 0; i < a->nsigs; i++)
        sigaction(a->sigs[i], &dfl, NULL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    if (a->argv) {
        execvpe(a->argv[0], a->argv, a->envp);
        if (errno != ENOENT) {
            a->err = errno;
            a->stage = 3;
            _exit(errno == EACCES || errno == ENOEXEC ? 126 : 127);
        }
    }
    execve("/bin/sh", a->shargv, a->envp);
    a->err = errno;
    a->stage = 4;
    _exit(127);
}

/* Plain words only: then the command can run without a shell. */
static int simple(const char *cmd)
{
    int first = 1;
    for (const char *c = cmd; *c; c++) {
        if (*c == ' ' || *c == '\t') {
            first = 0;
            continue;
        }
        if (first && *c == '=')
            return 0; /* VAR=value cmd */
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
              strchr("_./:=,+@%-", *c)))
            return 0;
    }
    return 1;
}

/* Non-blocking, so a FIFO without a reader fails at once (ENXIO) instead of
 * stopping the rank; FIFOs and sockets are refused, devices (/dev/null) not. */
static int open_out(const char *path, char *msg, size_t len)
{
    const int flags = O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NONBLOCK;
    int fd = open(path, flags, 0644);
    if (fd < 0 && errno == ENOENT) {
        char dir[4096];
        snprintf(dir, sizeof dir, "%s", path);
        char *slash = strrchr(dir, '/');
        if (slash && slash != dir) {
            *slash = '\0';
            if (tsr_mkdir_p(dir) == 0)
                fd = open(path, flags, 0644);
        }
    }
    struct stat st;
    if (fd >= 0 && (fstat(fd, &st) != 0 || S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode))) {
        close(fd);
        fd = -1;
        errno = EINVAL;
        snprintf(msg, len, "the output file %s is a FIFO or socket", path);
        return -1;
    }
    if (fd < 0 && errno == ENXIO) /* a FIFO nobody reads */
        snprintf(msg, len, "the output file %s is a FIFO or socket", path);
    else if (fd < 0)
        snprintf(msg, len, "cannot open the output file %s: %s", path, strerror(errno));
    else
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    return fd;
}

pid_t exec_spawn(const exec_req_t *r, int *pidfd, int *code, char *msg, size_t msglen)
{
    static int devnull = -1;
    if (nreset < 0)
        find_handled();
    if (devnull < 0)
        devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
    *pidfd = -1;
    *code = 126;
    msg[0] = '\0';
    int fo = open_out(r->out, msg, msglen), fe = -1;
    if (fo < 0)
        return -1;
    fe = strcmp(r->out, r->err) == 0 ? fo : open_out(r->err, msg, msglen);
    if (fe < 0) {
        close(fo);
        return -1;
    }
    char *copy = NULL, *words[MAX_ARGS + 1];
    char *shargv[] = {"sh", "-c", (char *)r->cmd, NULL};
    child_args_t a;
    memset(&a, 0, sizeof a);
    if (simple(r->cmd) && (copy = strdup(r->cmd))) {
        int n = 0;
        for (char *save, *w = strtok_r(copy, " \t", &save); w && n < MAX_ARGS; w = strtok_r(NULL, " \t", &save))
            words[n++] = w;
        words[n] = NULL;
        a.argv = n > 0 && n < MAX_ARGS ? words : NULL;
    }
    a.shargv = shargv;
    a.envp = r->envp;
    a.cwd = r->cwd;
    a.fd_in = devnull >= 0 ? devnull : fo;
    a.fd_out = fo;
    a.fd_err = fe;
    a.cpus = r->cpus;
    a.sigs = reset_sigs;
    a.nsigs = nreset;
    a.parent = getpid();
    /* No signal handler may run in the child while it shares our memory. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pid_t pid = vfork();
    if (pid == 0)
        child(&a);
    int e = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    free(copy);
    if (pid < 0) {
        snprintf(msg, msglen, "cannot start a process: %s", strerror(e));
    } else if (a.stage) {
        static const char *const what[] = {"", "cannot set up its output", "cannot change to its directory",
                                           "cannot execute it", "cannot execute /bin/sh"};
        snprintf(msg, msglen, "%s%s%s: %s", what[a.stage], a.stage == 2 ? " " : "", a.stage == 2 ? r->cwd : "",
                 strerror(a.err));
        *code = a.stage == 3 && a.err != EACCES && a.err != ENOEXEC ? 127 : 126;
        int st;
        waitpid(pid, &st, 0);
        pid = -1;
    } else {
        setpgid(pid, pid); /* (the child did it already; this closes the race for kill(-pid)) */
        *pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    }
    if (pid < 0 && msg[0]) {
        /* The reason also goes where the task's errors go. */
        char line[600];
        int n = snprintf(line, sizeof line, "tessera: %s\n", msg);
        if (write(fe, line, (size_t)n) < 0) {
        }
    }
    if (fe != fo)
        close(fe);
    close(fo);
    return pid;
}

int exec_reap(pid_t pid, int *how, int *code)
{
    int st;
    pid_t r = waitpid(pid, &st, WNOHANG);
    if (r == 0)
        return 0;
    if (r < 0) {
        *how = HOW_LOST;
        *code = 0;
        return 1;
    }
    if (WIFEXITED(st)) {
        *how = HOW_EXITED;
        *code = WEXITSTATUS(st);
    } else {
        *how = HOW_SIGNALED;
        *code = WIFSIGNALED(st) ? WTERMSIG(st) : 0;
    }
    /* What the task left in its group goes with it. */
    kill(-pid, SIGKILL);
    return 1;
}

void exec_tail(const char *path, char *buf, size_t len)
{
    buf[0] = '\0';
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    off_t end = lseek(fd, 0, SEEK_END);
    off_t from = end > (off_t)(len - 1) ? end - (off_t)(len - 1) : 0;
    ssize_t n = pread(fd, buf, len - 1, from);
    close(fd);
    if (n <= 0)
        return;
    buf[n] = '\0';
    /* Whole lines only, printable. */
    char *p = buf;
    if (from > 0 && (p = strchr(buf, '\n')))
        p++;
    else
        p = buf;
    size_t k = 0;
    for (; *p; p++)
        buf[k++] = (*p == '\n' || *p == '\t' || ((unsigned char)*p >= 0x20 && *p != 0x7f)) ? *p : '?';
    while (k && buf[k - 1] == '\n')
        k--;
    buf[k] = '\0';
}
