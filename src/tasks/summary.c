/* SPDX-License-Identifier: BSD-3-Clause */
/* Rank 0's progress lines and the table at the end of a run: counts by
 * state, the slowest tasks, failures with the last lines of their stderr,
 * skipped tasks with the dependency that failed, and each rank's share. */
#include "tasks/farm.h"

#include <stdio.h>
#include <string.h>

enum { SLOWEST = 5, LISTED = 10 };

void summary_progress(disp_t *d, double now)
{
    const uint64_t *k = d->s.count;
    tsr_log(TSR_LOG_INFO,
            "tasks: %llu/%llu final (%llu succeeded, %llu failed, %llu skipped, %llu cancelled), %d "
            "running, %llu queued, %.0f tasks/s, %.0f s",
            (unsigned long long)sched_final(&d->s), (unsigned long long)sched_total(&d->s),
            (unsigned long long)k[TSR_TASK_SUCCEEDED], (unsigned long long)k[TSR_TASK_FAILED],
            (unsigned long long)k[TSR_TASK_SKIPPED], (unsigned long long)k[TSR_TASK_CANCELLED], disp_outstanding(d),
            (unsigned long long)(sched_waiting(&d->s) + k[TSR_TASK_PENDING]), d->rate, now - d->t0);
}

static void how_text(const task_t *t, char *buf, size_t len)
{
    if (t->how == HOW_EXITED || t->how == HOW_SPAWN)
        snprintf(buf, len, "exit %d", t->code);
    else if (t->how == HOW_SIGNALED)
        snprintf(buf, len, "signal %d", t->code);
    else if (t->how == HOW_TIMEOUT)
        snprintf(buf, len, "timed out");
    else
        snprintf(buf, len, "%s", task_how_name(t->how));
}

void summary_print(disp_t *d)
{
    const ttable_t *tt = &d->tt;
    const uint64_t *k = d->s.count;
    double elapsed = tnow() - d->t0;
    uint64_t notrun = k[TSR_TASK_PENDING] + k[TSR_TASK_READY] + k[TSR_TASK_DELAYED] + k[TSR_TASK_RUNNING];
    printf("tessera: tasks: %s after %.2f s: %llu tasks: %llu succeeded, %llu failed, %llu skipped, %llu cancelled, "
           "%llu not finished\n",
           d->stopping ? "stopped" : "done", elapsed, (unsigned long long)tt->n,
           (unsigned long long)k[TSR_TASK_SUCCEEDED], (unsigned long long)k[TSR_TASK_FAILED],
           (unsigned long long)k[TSR_TASK_SKIPPED], (unsigned long long)k[TSR_TASK_CANCELLED],
           (unsigned long long)notrun);
    uint32_t slow[SLOWEST];
    int ns = 0;
    for (uint32_t i = 0; i < tt->n; i++) {
        const task_t *t = &tt->t[i];
        if (!(t->t_end > 0 && t->t_start > 0))
            continue;
        double dur = t->t_end - t->t_start;
        int at = ns;
        while (at > 0 && tt->t[slow[at - 1]].t_end - tt->t[slow[at - 1]].t_start < dur)
            at--;
        if (at >= SLOWEST)
            continue;
        if (ns < SLOWEST)
            ns++;
        memmove(slow + at + 1, slow + at, (size_t)(ns - 1 - at) * sizeof *slow);
        slow[at] = i;
    }
    if (ns) {
        printf("  slowest:");
        for (int s = 0; s < ns; s++)
            printf("%s %s %.3f s (rank %d)", s ? "," : "", tt->t[slow[s]].id,
                   tt->t[slow[s]].t_end - tt->t[slow[s]].t_start, tt->t[slow[s]].rank);
        printf("\n");
    }
    int shown = 0;
    for (uint32_t i = 0; i < tt->n && shown < LISTED; i++) {
        const task_t *t = &tt->t[i];
        if (t->state != TSR_TASK_FAILED)
            continue;
        if (!shown++)
            printf("  failed (%llu%s):\n", (unsigned long long)k[TSR_TASK_FAILED],
                   k[TSR_TASK_FAILED] > LISTED ? ", the first 10" : "");
        char how[64];
        how_text(t, how, sizeof how);
        printf("    %s: %s after %u attempt%s on rank %d: %s\n", t->id, how, t->attempts, t->attempts == 1 ? "" : "s",
               t->rank, t->cmd);
        if (t->tail) {
            const char *p = t->tail;
            /* the last 3 lines of its stderr */
            int lines = 0;
            for (const char *q = t->tail; *q; q++)
                lines += *q == '\n';
            for (; lines > 2 && (p = strchr(p, '\n')); lines--)
                p++;
            for (const char *q = p; q && *q;) {
                const char *nl = strchr(q, '\n');
                printf("      | %.*s\n", nl ? (int)(nl - q) : (int)strlen(q), q);
                q = nl ? nl + 1 : NULL;
            }
        }
    }
    shown = 0;
    for (uint32_t i = 0; i < tt->n && shown < LISTED; i++) {
        const task_t *t = &tt->t[i];
        if (t->state != TSR_TASK_SKIPPED || t->cause == TASK_NONE)
            continue;
        if (!shown++)
            printf("  skipped (%llu%s):", (unsigned long long)k[TSR_TASK_SKIPPED],
                   k[TSR_TASK_SKIPPED] > LISTED ? ", the first 10" : "");
        printf(" %s (dependency %s %s)", t->id, tt->t[t->cause].id,
               tsr_task_state_name((tsr_task_state_t)tt->t[t->cause].state));
    }
    if (shown)
        printf("\n");
    for (int r = 0; r < d->world && d->world > 1; r++) {
        const rankinfo_t *rk = &d->ranks[r];
        double busy = elapsed > 0 && rk->cores ? rk->busy_s / (rk->cores * elapsed) : 0;
        printf("  rank %d (%s, %s): %llu attempts, busy %.0f%%\n", r, rk->host, rk->place,
               (unsigned long long)rk->finished, 100 * (busy > 1 ? 1 : busy));
    }
    fflush(stdout);
}
