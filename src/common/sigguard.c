/* SPDX-License-Identifier: BSD-3-Clause */
/* The crash guard around plugin calls (sigguard.h). */
#include "common/sigguard.h"

#include "tessera/error.h"

#include <setjmp.h>
#include <signal.h>
#include <string.h>

static _Thread_local sigjmp_buf *guard_jmp;
static const int sigs[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL};
enum { NSIGS = sizeof sigs / sizeof sigs[0] };

static void on_crash(int sig)
{
    if (guard_jmp)
        siglongjmp(*guard_jmp, sig);
    signal(sig, SIG_DFL);
    raise(sig);
}

int tsr_sigguard_run(int (*fn)(void *), void *arg, int *sig)
{
    struct sigaction sa, old[NSIGS];
    sigjmp_buf jb;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_crash;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_NODEFER;
    for (int i = 0; i < NSIGS; i++)
        sigaction(sigs[i], &sa, &old[i]);
    volatile int rc;
    int got = sigsetjmp(jb, 1);
    if (got == 0) {
        guard_jmp = &jb;
        rc = fn(arg);
    } else {
        rc = TSR_EINTERNAL;
    }
    guard_jmp = NULL;
    for (int i = 0; i < NSIGS; i++)
        sigaction(sigs[i], &old[i], NULL);
    *sig = got;
    return rc;
}
