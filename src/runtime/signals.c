/* SPDX-License-Identifier: BSD-3-Clause */
/* SIGTERM, SIGUSR1 and SIGINT ask the job to checkpoint and stop at the next
 * step boundary (never inside a collective); a second SIGINT, or SIGUSR2,
 * stops at once. */
#include "tessera/runtime.h"

#include <signal.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t stop_signal = 0;
static volatile sig_atomic_t sigints = 0;

static void on_signal(int sig)
{
    /* A second SIGINT, or SIGUSR2 (what tessera launch sends, through
     * mpirun, on a second Ctrl-C), stops at once. */
    if ((sig == SIGINT && ++sigints >= 2) || sig == SIGUSR2) {
        static const char msg[] = "tessera: second SIGINT, stopping now without a checkpoint\n";
        static const char msg2[] = "tessera: SIGUSR2, stopping now without a checkpoint\n";
        ssize_t w =
            sig == SIGINT ? write(STDERR_FILENO, msg, sizeof msg - 1) : write(STDERR_FILENO, msg2, sizeof msg2 - 1);
        (void)w;
        _exit(130);
    }
    if (!stop_signal)
        stop_signal = sig;
}

int tsr_runtime_install_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    int sigs[] = {SIGTERM, SIGUSR1, SIGINT, SIGUSR2};
    for (size_t i = 0; i < sizeof sigs / sizeof *sigs; i++)
        if (sigaction(sigs[i], &sa, NULL) != 0)
            return -1;
    return 0;
}

int tsr_runtime_stop_signal(void) { return stop_signal; }

void tsr_runtime_request_stop(int sig) { stop_signal = sig; }
