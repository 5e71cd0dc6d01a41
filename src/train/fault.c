/* SPDX-License-Identifier: BSD-3-Clause */
/* Fault injection for tests: see fault.h. */
#include "train/fault.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void parse(const char *env, tsr_fault_t *f)
{
    const char *v = getenv(env);
    f->rank = -1;
    f->step = -1;
    f->point[0] = '\0';
    if (!v)
        return;
    if (sscanf(v, "%d:@%15[a-z]", &f->rank, f->point) == 2)
        return;
    if (sscanf(v, "%d:%ld", &f->rank, &f->step) != 2 || f->step < 0) {
        f->rank = -1;
        return;
    }
    if (f->step == 0) { /* the old spelling of the set-up point */
        f->step = -1;
        strcpy(f->point, "setup");
    }
}

void tsr_faults_read(tsr_faults_t *f)
{
    parse("TSR_FAULT_KILL", &f->kill);
    parse("TSR_FAULT_STALL", &f->stall);
    const char *v = getenv("TSR_FAULT_SLOW");
    f->slow_rank = -1;
    if (v &&
        (sscanf(v, "%d:%lf", &f->slow_rank, &f->slow_factor) != 2 || !(f->slow_factor > 1) || f->slow_factor > 1e6))
        f->slow_rank = -1;
}

void tsr_fault_slow(const tsr_faults_t *f, int rank, double seconds)
{
    if (f->slow_rank != rank || !(seconds > 0))
        return;
    double s = seconds * (f->slow_factor - 1);
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static void act(const tsr_faults_t *f, const tsr_fault_t *which)
{
    if (which == &f->kill)
        raise(SIGKILL);
    for (;;)
        pause();
}

void tsr_fault_step(const tsr_faults_t *f, int rank, long step)
{
    if (f->kill.rank == rank && f->kill.step == step)
        act(f, &f->kill);
    if (f->stall.rank == rank && f->stall.step == step)
        act(f, &f->stall);
}

void tsr_fault_point(const tsr_faults_t *f, int rank, const char *point)
{
    if (f->kill.rank == rank && strcmp(f->kill.point, point) == 0)
        act(f, &f->kill);
    if (f->stall.rank == rank && strcmp(f->stall.point, point) == 0)
        act(f, &f->stall);
}
