/* SPDX-License-Identifier: BSD-3-Clause */
/* Tasks by state in tessera's own counters (PAPI sde:::tessera::tasks_*). */
#ifndef TSR_TASKS_COUNT_H
#define TSR_TASKS_COUNT_H
#include <stdint.h>

/* n tasks entered state (a tsr_task_state_t; -1: submitted). */
void tasks_count_state(int state, uint64_t n);

#endif
