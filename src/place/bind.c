/* SPDX-License-Identifier: BSD-3-Clause */
/* Binding the calling process to its planned cores, and BLAS threads. */
#include "tessera/place.h"
#include "tessera/error.h"

#include <errno.h>
#include <string.h>

/* Declared here rather than through cblas.h so this file does not depend on
 * which cblas.h is first on the include path; libopenblas defines it. */
void openblas_set_num_threads(int);

int tsr_place_bind(hwloc_topology_t topo, const tsr_place_plan_t *plan, int local_rank)
{
    if (!topo)
        return tsr_error_set(TSR_EINVAL, "place: topology is NULL");
    hwloc_const_bitmap_t set = tsr_place_plan_cpuset(plan, local_rank);
    if (!set)
        return TSR_EINVAL; /* message set by tsr_place_plan_cpuset */
    /* The whole process, so threads started later (BLAS, prefetch) inherit it. */
    if (hwloc_set_cpubind(topo, set, HWLOC_CPUBIND_PROCESS) != 0) {
        int err = errno;
        char list[256];
        hwloc_bitmap_list_snprintf(list, sizeof list, set);
        return tsr_error_set(TSR_ESYS, "place: cannot bind local rank %d to cpuset %s: %s", local_rank, list,
                             strerror(err));
    }
    return TSR_OK;
}

/* oneDNN's Debian build threads with OpenMP: its GEMMs take the calling
 * thread's OpenMP thread count, so the thread that sets it is the one that
 * trains. */
#ifdef TSR_HAVE_ONEDNN
void omp_set_num_threads(int);
#endif

void tsr_place_set_blas_threads(int n)
{
    openblas_set_num_threads(n < 1 ? 1 : n);
#ifdef TSR_HAVE_ONEDNN
    omp_set_num_threads(n < 1 ? 1 : n);
#endif
}
