/* SPDX-License-Identifier: BSD-3-Clause */
/* The step's one phase hook (internal to src/train): each boundary reads
 * the clock once and that reading feeds all three consumers: perf's phase
 * switch (tsr_perf_phase_at: seconds and PAPI counts per phase), this
 * rank's interval sums (the bottleneck report and /status' windows) and,
 * with a timeline, the trace ring (the end of one phase, the next one's
 * begin). The loop calls tsr_train_phase at each boundary (loop.c, marked
 * "phase:"); switches outside a step (evaluation, the last checkpoint)
 * are perf's alone. tracing.c owns the timeline, the clock alignment and
 * the bottleneck report. */
#ifndef TSR_TRAIN_PHASE_H
#define TSR_TRAIN_PHASE_H
#include "tessera/log.h"
#include "tessera/perf.h"
#include "tessera/trace.h"

/* perf's in-step phases, in the timeline's order. */
_Static_assert(TSR_PHASE_FORWARD - TSR_PHASE_DATA == TSR_TRACE_FORWARD - TSR_TRACE_DATA &&
                   TSR_PHASE_BACKWARD - TSR_PHASE_DATA == TSR_TRACE_BACKWARD - TSR_TRACE_DATA &&
                   TSR_PHASE_REDUCE - TSR_PHASE_DATA == TSR_TRACE_REDUCE - TSR_TRACE_DATA &&
                   TSR_PHASE_OPTIMIZER - TSR_PHASE_DATA == TSR_TRACE_OPTIM - TSR_TRACE_DATA &&
                   TSR_PHASE_CHECKPOINT - TSR_PHASE_DATA == TSR_TRACE_CKPT - TSR_TRACE_DATA &&
                   TSR_TRACE_CKPT + 1 == TSR_TRACE_NPHASES,
               "tsr_phase_t's step phases and the timeline's must line up");

typedef struct tsr_train_phases {
    tsr_trace_t *trace;    /* NULL: no timeline */
    struct tsr_perf *perf; /* NULL: [monitor] perf off */
    int cur;               /* TSR_TRACE_NONE or the timeline's phase under way */
    double since;          /* when it began */
    double step_t0;        /* when the step began */
    /* the whole run on this rank, and the window since the last publish */
    double sum[TSR_TRACE_NPHASES], step_s, win[TSR_TRACE_NPHASES], win_step_s;
    long steps, win_steps;
} tsr_train_phases_t;

/* A phase boundary at `now`: `next` begins (TSR_PHASE_OTHER: no step
 * phase) and the one under way ends. */
static inline void tsr_train_phase_at(tsr_train_phases_t *p, tsr_phase_t next, double now)
{
    int ph = next >= TSR_PHASE_DATA && next <= TSR_PHASE_CHECKPOINT ? (int)(next - TSR_PHASE_DATA) + TSR_TRACE_DATA
                                                                    : TSR_TRACE_NONE;
    if (p->cur >= 0) {
        double d = now - p->since;
        p->sum[p->cur] += d;
        p->win[p->cur] += d;
        tsr_trace_event_at(p->trace, p->cur, 'E', 0, now);
    }
    if (ph >= 0)
        tsr_trace_event_at(p->trace, ph, 'B', 0, now);
    p->cur = ph;
    p->since = now;
    tsr_perf_phase_at(p->perf, next, now);
}

static inline void tsr_train_phase(tsr_train_phases_t *p, tsr_phase_t next)
{
    tsr_train_phase_at(p, next, tsr_time_now());
}

/* A step begins (with its data phase) and ends (after its checkpoint). */
static inline void tsr_train_step_begin(tsr_train_phases_t *p, long step)
{
    double now = tsr_time_now();
    p->step_t0 = now;
    tsr_trace_event_at(p->trace, TSR_TRACE_STEP, 'B', step, now);
    tsr_train_phase_at(p, TSR_PHASE_DATA, now);
}

static inline void tsr_train_step_end(tsr_train_phases_t *p)
{
    double now = tsr_time_now();
    tsr_train_phase_at(p, TSR_PHASE_OTHER, now);
    tsr_trace_event_at(p->trace, TSR_TRACE_STEP, 'E', 0, now);
    p->step_s += now - p->step_t0;
    p->win_step_s += now - p->step_t0;
    p->steps++;
    p->win_steps++;
}

#endif
