/* SPDX-License-Identifier: BSD-3-Clause */
/* Task state names, shared by the C API, the journal and the routes. */
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
