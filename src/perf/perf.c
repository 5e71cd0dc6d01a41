/* SPDX-License-Identifier: BSD-3-Clause */
/* Phase timers and PAPI counters: at each phase switch the clock (and the
 * event set, when there is one) is read once and the difference charged
 * to the phase being left. PAPI counts the calling thread: the one that
 * runs the step (BLAS worker threads are not in the counts). */
#include "perf/internal.h"
#include "tessera/error.h"
#include "tessera/log.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef TSR_HAVE_PAPI
#include <papi.h>
#endif
#if defined(__x86_64__)
#include <x86intrin.h>
#endif

struct tsr_perf {
    tsr_phase_t cur;
    int tsc;                       /* ticks are the CPU's time-stamp counter, else seconds */
    double t, t0, wall0;           /* ticks when cur began, and at create (with the clock then) */
    double ticks[TSR_PHASE_COUNT]; /* time in each phase, in ticks */
    tsr_perf_totals_t tot;
    perf_events_t ev;
    char note[PERF_NOTE_LEN];
#ifdef TSR_HAVE_PAPI
    int es, running;
    long long last[TSR_PERF_MAX_EVENTS], now[TSR_PERF_MAX_EVENTS];
#endif
};

/* The phase clock: a clock_gettime costs 80 ns in some VMs (kvm-clock), the
 * time-stamp counter 10-30 ns; where it is constant and never stops, phases
 * are timed in its ticks, turned into seconds over the whole interval since
 * create (no calibration wait). */
static int tsc_usable(void)
{
#if defined(__x86_64__)
    static int usable = -1;
    if (usable >= 0)
        return usable;
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[4096];
    int constant = 0, nonstop = 0;
    while (f && fgets(line, sizeof line, f) && strncmp(line, "flags", 5) != 0) {
    }
    if (f && strncmp(line, "flags", 5) == 0) {
        constant = strstr(line, " constant_tsc") != NULL;
        nonstop = strstr(line, " nonstop_tsc") != NULL;
    }
    if (f)
        fclose(f);
    return usable = constant && nonstop;
#else
    return 0;
#endif
}

static double ticks_now(const struct tsr_perf *p)
{
#if defined(__x86_64__)
    if (p->tsc)
        return (double)__rdtsc();
#endif
    return tsr_time_now();
}

static const char *const phase_names[TSR_PHASE_COUNT] = {
    "other", "data", "forward", "backward", "reduce", "optimizer", "checkpoint", "eval", "task",
};

const char *tsr_phase_name(tsr_phase_t ph) { return (unsigned)ph < TSR_PHASE_COUNT ? phase_names[ph] : NULL; }

void perf_append(char *buf, size_t len, const char *fmt, ...)
{
    size_t at = strlen(buf);
    if (at + 1 >= len)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + at, len - at, fmt, ap);
    va_end(ap);
}

#ifdef TSR_HAVE_PAPI
/* Adds the resolved events one by one. Those the hardware cannot count
 * together with the ones before (PAPI_ECNFLCT) are dropped as too many;
 * those it cannot count at all are dropped as not counted here: PAPI may
 * list a preset whose native events the kernel then refuses, as in a
 * virtual machine without a virtual PMU. */
static int start_events(tsr_perf_t *p)
{
    char conflict[PERF_NOTE_LEN] = "", refused[PERF_NOTE_LEN] = "";
    const char *why = NULL;
    perf_events_t kept = {0};
    p->es = PAPI_NULL;
    int rc = PAPI_create_eventset(&p->es);
    if (rc != PAPI_OK)
        return tsr_error_set(TSR_ENOTSUP, "PAPI_create_eventset: %s", PAPI_strerror(rc));
    for (int i = 0; i < p->ev.n; i++) {
        rc = PAPI_add_event(p->es, p->ev.code[i]);
        if (rc == PAPI_OK) {
            kept.code[kept.n] = p->ev.code[i];
            memcpy(kept.name[kept.n++], p->ev.name[i], sizeof kept.name[0]);
        } else if (rc == PAPI_ECNFLCT) {
            perf_append(conflict, sizeof conflict, "%s%s", *conflict ? ", " : "", p->ev.name[i]);
        } else {
            perf_append(refused, sizeof refused, "%s%s", *refused ? ", " : "", p->ev.name[i]);
            why = why ? why : PAPI_strerror(rc);
        }
        /* A failed first add leaves the set bound to that event's component,
         * which would refuse the next component's events: start afresh. */
        if (rc != PAPI_OK && !kept.n) {
            PAPI_cleanup_eventset(p->es);
            PAPI_destroy_eventset(&p->es);
            p->es = PAPI_NULL;
            if ((rc = PAPI_create_eventset(&p->es)) != PAPI_OK)
                return tsr_error_set(TSR_ENOTSUP, "PAPI_create_eventset: %s", PAPI_strerror(rc));
        }
    }
    if (*refused)
        perf_append(p->note, sizeof p->note,
                    "%sPAPI events not counted on this machine: %s: PAPI lists them but cannot add them (%s); the "
                    "kernel does not count them here (a virtual machine without a virtual PMU?)",
                    *p->note ? "; " : "", refused, why ? why : "?");
    if (*conflict) {
        perf_append(p->note, sizeof p->note, "%sdropped PAPI events %s: more than this machine counts at once",
                    *p->note ? "; " : "", conflict);
        if (kept.n) {
            perf_append(p->note, sizeof p->note, " (counting ");
            for (int i = 0; i < kept.n; i++)
                perf_append(p->note, sizeof p->note, "%s%s", i ? ", " : "", kept.name[i]);
            perf_append(p->note, sizeof p->note, ")");
        }
    }
    p->ev = kept;
    for (int i = 0; i < p->ev.n; i++)
        p->ev.ptr[i] = p->ev.name[i];
    if (!p->ev.n)
        return TSR_OK;
    if ((rc = PAPI_start(p->es)) != PAPI_OK) {
        perf_append(p->note, sizeof p->note, "%sPAPI events not counted: PAPI_start: %s", *p->note ? "; " : "",
                    PAPI_strerror(rc));
        p->ev.n = 0;
        return TSR_OK;
    }
    p->running = 1;
    return TSR_OK;
}
#endif

int tsr_perf_create(const char *events, tsr_perf_t **out)
{
    *out = NULL;
    tsr_perf_t *p = calloc(1, sizeof *p);
    if (!p)
        return tsr_error_set(TSR_ENOMEM, "out of memory");
    int rc = TSR_OK;
#ifdef TSR_HAVE_PAPI
    p->es = PAPI_NULL;
#endif
    if (events && events[strspn(events, " ,\t")]) {
#ifdef TSR_HAVE_PAPI
        if (!(rc = perf_papi_init()) && !(rc = perf_resolve(events, &p->ev, p->note, sizeof p->note)) && p->ev.n)
            rc = start_events(p);
#else
        rc = tsr_error_set(TSR_ENOTSUP,
                           "[monitor] papi_events = %.200s: this tessera was built without PAPI "
                           "(TESSERA_WITH_PAPI=OFF)",
                           events);
#endif
    }
    if (rc) {
        tsr_perf_destroy(p);
        return rc;
    }
    p->tsc = tsc_usable();
    p->wall0 = tsr_time_now();
    p->t = p->t0 = ticks_now(p);
    p->tot.entries[TSR_PHASE_OTHER] = 1;
    *out = p;
    return TSR_OK;
}

void tsr_perf_destroy(tsr_perf_t *p)
{
    if (!p)
        return;
#ifdef TSR_HAVE_PAPI
    if (p->running)
        PAPI_stop(p->es, p->now);
    if (p->es != PAPI_NULL) {
        PAPI_cleanup_eventset(p->es);
        PAPI_destroy_eventset(&p->es);
    }
#endif
    free(p);
}

/* From the TSC to the caller's clock for good: the ticks so far become
 * seconds at the rate measured since create. */
static void to_wall_clock(tsr_perf_t *p)
{
    double tk = ticks_now(p), wall = tsr_time_now(), scale = tk > p->t0 ? (wall - p->wall0) / (tk - p->t0) : 0;
    for (int k = 0; k < TSR_PHASE_COUNT; k++)
        p->ticks[k] *= scale;
    p->t = p->wall0 + (p->t - p->t0) * scale;
    p->t0 = p->wall0;
    p->tsc = 0;
}

static void charge(tsr_perf_t *p, tsr_phase_t next, double now)
{
    p->ticks[p->cur] += now - p->t;
    p->t = now;
#ifdef TSR_HAVE_PAPI
    if (p->running && PAPI_read(p->es, p->now) == PAPI_OK)
        for (int i = 0; i < p->ev.n; i++) {
            p->tot.counts[p->cur][i] += (double)(p->now[i] - p->last[i]);
            p->last[i] = p->now[i];
        }
#endif
    p->tot.entries[next] += 1;
    p->cur = next;
}

void tsr_perf_phase(tsr_perf_t *p, tsr_phase_t next)
{
    if (p && (unsigned)next < TSR_PHASE_COUNT)
        charge(p, next, ticks_now(p));
}

void tsr_perf_phase_at(tsr_perf_t *p, tsr_phase_t next, double now)
{
    if (!p || (unsigned)next >= TSR_PHASE_COUNT)
        return;
    if (p->tsc)
        to_wall_clock(p);
    charge(p, next, now);
}

tsr_phase_t tsr_perf_current(const tsr_perf_t *p) { return p ? p->cur : TSR_PHASE_OTHER; }

const char *tsr_perf_note(const tsr_perf_t *p) { return p && p->note[0] ? p->note : NULL; }

int tsr_perf_nevents(const tsr_perf_t *p) { return p ? p->ev.n : 0; }

const char *const *tsr_perf_events(const tsr_perf_t *p) { return p ? p->ev.ptr : NULL; }

void tsr_perf_totals(tsr_perf_t *p, tsr_perf_totals_t *out)
{
    if (!p) {
        memset(out, 0, sizeof *out);
        return;
    }
    /* Charge the phase under way without counting a new entry. */
    tsr_phase_t cur = p->cur;
    tsr_perf_phase(p, cur);
    p->tot.entries[cur] -= 1;
    double span = p->t - p->t0, wall = tsr_time_now() - p->wall0;
    double scale = !p->tsc ? 1 : span > 0 ? wall / span : 0;
    for (int k = 0; k < TSR_PHASE_COUNT; k++)
        p->tot.seconds[k] = p->ticks[k] * scale;
    *out = p->tot;
}

static int find(const char *const *events, int n, const char *name)
{
    for (int i = 0; events && i < n; i++)
        if (events[i] && strcmp(events[i], name) == 0)
            return i;
    return -1;
}

/* The sum of event i over one phase or all. */
static double sum(const tsr_perf_totals_t *t, int ph, int i)
{
    if (i < 0)
        return NAN;
    if (ph >= 0)
        return t->counts[ph][i];
    double s = 0;
    for (int k = 0; k < TSR_PHASE_COUNT; k++)
        s += t->counts[k][i];
    return s;
}

void tsr_perf_derive(const char *const *events, int n, const tsr_perf_totals_t *t, int ph, tsr_perf_derived_t *out)
{
    double secs = 0;
    for (int k = 0; k < TSR_PHASE_COUNT; k++)
        secs += ph < 0 || ph == k ? t->seconds[k] : 0;
    double ins = sum(t, ph, find(events, n, "PAPI_TOT_INS")), cyc = sum(t, ph, find(events, n, "PAPI_TOT_CYC"));
    out->ipc = cyc > 0 ? ins / cyc : NAN;
    static const char *const flops[] = {"PAPI_FP_OPS", "PAPI_SP_OPS", "PAPI_DP_OPS"};
    out->gflops = NAN;
    for (int k = 0; k < 3 && isnan(out->gflops); k++) {
        double f = sum(t, ph, find(events, n, flops[k]));
        if (!isnan(f) && secs > 0)
            out->gflops = f / secs * 1e-9;
    }
    double miss = sum(t, ph, find(events, n, "PAPI_L3_TCM"));
    if (isnan(miss))
        miss = sum(t, ph, find(events, n, "PAPI_L2_TCM"));
    out->mem_bytes = miss * 64;
}
