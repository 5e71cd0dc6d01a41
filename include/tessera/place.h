/* SPDX-License-Identifier: BSD-3-Clause */
/* Placement: a binding plan that splits a node's cores among its local
 * ranks (whole packages and NUMA domains first), binding, BLAS threads. */
#ifndef TESSERA_PLACE_H
#define TESSERA_PLACE_H
#include <hwloc.h>
#include <stddef.h>
#include "tessera/api.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tsr_place_plan tsr_place_plan_t;

/* Builds the plan for nlocal ranks on the node described by topo (which the
 * caller owns and keeps alive while the plan lives). With more ranks than
 * cores, ranks share cores round-robin and each owns one. */
TSR_API int tsr_place_plan_create(hwloc_topology_t topo, int nlocal, tsr_place_plan_t **out);
TSR_API void tsr_place_plan_destroy(tsr_place_plan_t *plan);

TSR_API int tsr_place_plan_nranks(const tsr_place_plan_t *plan);
/* The cpuset of a local rank (owned by the plan). */
TSR_API hwloc_const_bitmap_t tsr_place_plan_cpuset(const tsr_place_plan_t *plan, int local_rank);
/* Number of cores (not PUs) the rank owns. */
TSR_API int tsr_place_plan_ncores(const tsr_place_plan_t *plan, int local_rank);
/* OS index of the NUMA node the rank's cores belong to (-1 if they span
 * several or the machine reports none). */
TSR_API int tsr_place_plan_numa(const tsr_place_plan_t *plan, int local_rank);
/* The cpuset as a list string such as "0-3,8". */
TSR_API int tsr_place_plan_cpuset_string(const tsr_place_plan_t *plan, int local_rank, char *buf, size_t len);

/* Binds the calling process to the rank's cpuset. */
TSR_API int tsr_place_bind(hwloc_topology_t topo, const tsr_place_plan_t *plan, int local_rank);
/* GPU locality. The topology must be loaded with I/O devices kept
 * (hwloc_topology_set_io_types_filter(topo, HWLOC_TYPE_FILTER_KEEP_IMPORTANT)).
 * near: 1 when the PCI device busid ("0000:3b:00.0") is attached to the
 * package or NUMA domain of cpuset, 0 when it is attached elsewhere, -1
 * when hwloc cannot tell (device not found, or a single-domain machine). */
TSR_API int tsr_place_gpu_near(hwloc_topology_t topo, hwloc_const_bitmap_t cpuset, const char *busid);
/* Which of ngpus GPUs (given by bus id) a local rank bound to cpuset
 * should use: the near ones, spread by local_rank; all of them when none
 * is known to be near. -1 when ngpus is 0. */
TSR_API int tsr_place_gpu_pick(hwloc_topology_t topo, hwloc_const_bitmap_t cpuset, const char *const *busids, int ngpus,
                               int local_rank);
/* Sets the BLAS library's thread count (OpenBLAS). */
TSR_API void tsr_place_set_blas_threads(int n);
/* The kernel set OpenBLAS runs ("Haswell", "SkylakeX", ...). */
TSR_API const char *tsr_place_blas_core(void);

#ifdef __cplusplus
}
#endif
#endif
