/* SPDX-License-Identifier: BSD-3-Clause */
/* The step's phase timers (internal to src/train): each boundary reads the
 * clock once, adds the phase that ends to this rank's sums and, with a
 * timeline, records the end and the next phase's begin. The loop calls
 * tsr_train_phase at each boundary (loop.c, marked "phase:"). tracing.c
 * owns the timeline, the clock alignment and the bottleneck report. */
#ifndef TSR_TRAIN_PHASE_H
#define TSR_TRAIN_PHASE_H
#include "tessera/log.h"
#include "tessera/trace.h"

typedef struct tsr_train_phases {
    tsr_trace_t *trace; /* NULL: no timeline */
    int cur;            /* TSR_TRACE_NONE or the phase under way */
    double since;       /* when it began */
    double step_t0;     /* when the step began */
    /* the whole run on this rank, and the window since the last publish */
    double sum[TSR_TRACE_NPHASES], step_s, win[TSR_TRACE_NPHASES], win_step_s;
    long steps, win_steps;
} tsr_train_phases_t;

static inline void tsr_train_phase_at(tsr_train_phases_t *p, int phase, double now)
{
    if (p->cur >= 0) {
        double d = now - p->since;
        p->sum[p->cur] += d;
        p->win[p->cur] += d;
        tsr_trace_event_at(p->trace, p->cur, 'E', 0, now);
    }
    if (phase >= 0)
        tsr_trace_event_at(p->trace, phase, 'B', 0, now);
    p->cur = phase;
    p->since = now;
}

/* A phase boundary: `phase` begins (TSR_TRACE_NONE: none) and the current one ends. */
static inline void tsr_train_phase(tsr_train_phases_t *p, int phase) { tsr_train_phase_at(p, phase, tsr_time_now()); }

/* A step begins (with its data phase) and ends (after its checkpoint). */
static inline void tsr_train_step_begin(tsr_train_phases_t *p, long step)
{
    double now = tsr_time_now();
    p->step_t0 = now;
    tsr_trace_event_at(p->trace, TSR_TRACE_STEP, 'B', step, now);
    tsr_train_phase_at(p, TSR_TRACE_DATA, now);
}

static inline void tsr_train_step_end(tsr_train_phases_t *p)
{
    double now = tsr_time_now();
    tsr_train_phase_at(p, TSR_TRACE_NONE, now);
    tsr_trace_event_at(p->trace, TSR_TRACE_STEP, 'E', 0, now);
    p->step_s += now - p->step_t0;
    p->win_step_s += now - p->step_t0;
    p->steps++;
    p->win_steps++;
}

#endif
