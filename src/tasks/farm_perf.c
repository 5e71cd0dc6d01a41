/* SPDX-License-Identifier: BSD-3-Clause */
/* The farm's counters and resource use (src/perf): a rank's seconds tending
 * its tasks (starting, reaping, timing out: TSR_PHASE_TASK) against the
 * rest of its loop (messages, dispatch, waiting), its own resource use and
 * its tasks' (reaped children's CPU time), logged at the end by each rank
 * (rank 0's shown, the others' at debug level: no collective after the
 * loop, where a rank may be gone). Task counts by state are tessera's
 * counters (sde:::tessera::tasks_*), kept by rank 0's dispatcher. */
#include "tasks/farm.h"
#include "tessera/log.h"
#include "tessera/perf.h"

#include <stdio.h>

void farm_perf_report(int rank, tsr_perf_t *p)
{
    if (!p)
        return;
    tsr_perf_totals_t t;
    tsr_resource_t res;
    char line[512];
    tsr_perf_totals(p, &t);
    tsr_resource_sample(NULL, &res);
    tsr_resource_format(&res, line, sizeof line);
    int level = rank == 0 ? TSR_LOG_INFO : TSR_LOG_DEBUG;
    tsr_log(level, "tasks perf: rank %d: %.2f s tending tasks, %.2f s dispatching and waiting; %s", rank,
            t.seconds[TSR_PHASE_TASK], t.seconds[TSR_PHASE_OTHER], line);
    if (rank != 0)
        return;
    size_t at = 0;
    for (int k = TSR_COUNTER_TASKS_SUBMITTED; k <= TSR_COUNTER_TASKS_CANCELLED && at < sizeof line; k++)
        at += (size_t)snprintf(line + at, sizeof line - at, "%s%s %lld", at ? ", " : "",
                               tsr_counter_name((tsr_counter_t)k), (long long)tsr_counter_get((tsr_counter_t)k));
    tsr_log(TSR_LOG_INFO, "tasks perf: counters (PAPI sde:::tessera::<name>): %s", line);
}
