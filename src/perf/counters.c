/* SPDX-License-Identifier: BSD-3-Clause */
/* tessera's own counters: one process-wide array of 64-bit integers added
 * to with relaxed atomics. With PAPI they are registered with libsde when
 * the library loads, so any PAPI-aware tool in the process reads them as
 * "sde:::tessera::<name>" (PAPI's sde component reads the integers in
 * place: registering costs nothing per update). */
#include "tessera/perf.h"

#ifdef TSR_HAVE_PAPI
#include <sde_lib.h>
#endif

static long long counters[TSR_COUNTER_COUNT];

static const char *const names[TSR_COUNTER_COUNT] = {
    "steps",         "samples",    "reduced_bytes_mpi", "reduced_bytes_shm", "reduced_bytes_nccl", "reduce_wait_ns",
    "ckpt_bytes",    "ckpt_ns",    "cache_hits",        "cache_misses",      "predictions",        "tasks_submitted",
    "tasks_started", "tasks_done", "tasks_failed",      "tasks_cancelled",
};

static const char *const helps[TSR_COUNTER_COUNT] = {
    "optimizer steps taken",
    "training samples this rank consumed",
    "gradient bytes reduced by the mpi back-end",
    "gradient bytes reduced by the shm back-end",
    "gradient bytes reduced by the nccl back-end",
    "nanoseconds the step waited for gradient sums (exposed reduction)",
    "checkpoint bytes written",
    "nanoseconds spent writing checkpoints",
    "prediction cache hits (rows)",
    "prediction cache misses (rows)",
    "rows answered by /predict",
    "tasks submitted to the farm",
    "tasks started",
    "tasks finished with exit code 0",
    "tasks failed (after their retries)",
    "tasks cancelled",
};

const char *tsr_counter_name(tsr_counter_t c) { return (unsigned)c < TSR_COUNTER_COUNT ? names[c] : NULL; }

void tsr_counter_add(tsr_counter_t c, int64_t v)
{
    if ((unsigned)c < TSR_COUNTER_COUNT)
        __atomic_fetch_add(&counters[c], (long long)v, __ATOMIC_RELAXED);
}

const char *tsr_counter_help(tsr_counter_t c) { return (unsigned)c < TSR_COUNTER_COUNT ? helps[c] : NULL; }

int64_t tsr_counter_get(tsr_counter_t c)
{
    return (unsigned)c < TSR_COUNTER_COUNT ? __atomic_load_n(&counters[c], __ATOMIC_RELAXED) : 0;
}

#ifdef TSR_HAVE_PAPI
/* At load: PAPI's sde component looks the library up by name when a tool
 * adds "sde:::tessera::..." (before or after this runs). */
__attribute__((constructor)) static void register_sde(void)
{
    papi_handle_t h = papi_sde_init("tessera");
    if (!h)
        return;
    for (int i = 0; i < TSR_COUNTER_COUNT; i++) {
        papi_sde_register_counter(h, names[i], PAPI_SDE_RO | PAPI_SDE_DELTA, PAPI_SDE_long_long, &counters[i]);
        papi_sde_describe_counter(h, names[i], helps[i]);
    }
}
#endif
