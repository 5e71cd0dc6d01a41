/* SPDX-License-Identifier: BSD-3-Clause */
/* Task state names, shared by the C API, the journal and the routes. */
#include "tasks/count.h"
#include "tessera/perf.h"
#include "tessera/tasks.h"

#include <string.h>

static const char *const names[TSR_TASK_NSTATES] = {"pending",   "ready",  "delayed", "running",
                                                    "succeeded", "failed", "skipped", "cancelled"};

const char *tsr_task_state_name(tsr_task_state_t s) { return (int)s >= 0 && s < TSR_TASK_NSTATES ? names[s] : NULL; }

int tsr_task_state_parse(const char *s)
{
    for (int i = 0; i < TSR_TASK_NSTATES; i++)
        if (strcmp(s, names[i]) == 0)
            return i;
    return -1;
}

void tasks_count_state(int state, uint64_t n)
{
    tsr_counter_t c = state < 0                     ? TSR_COUNTER_TASKS_SUBMITTED
                      : state == TSR_TASK_RUNNING   ? TSR_COUNTER_TASKS_STARTED
                      : state == TSR_TASK_SUCCEEDED ? TSR_COUNTER_TASKS_DONE
                      : state == TSR_TASK_FAILED    ? TSR_COUNTER_TASKS_FAILED
                      : state == TSR_TASK_CANCELLED ? TSR_COUNTER_TASKS_CANCELLED
                                                    : TSR_COUNTER_COUNT;
    tsr_counter_add(c, (int64_t)n);
}
