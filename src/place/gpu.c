/* SPDX-License-Identifier: BSD-3-Clause */
/* GPU locality: whether a PCI device (a GPU, by bus id) hangs off the
 * package or NUMA domain that holds a set of cores. hwloc knows PCI
 * devices without any GPU library; the caller maps CUDA devices to bus ids. */
#include "tessera/place.h"
#include "tessera/error.h"

#include <stdio.h>

int tsr_place_gpu_near(hwloc_topology_t topo, hwloc_const_bitmap_t cpuset, const char *busid)
{
    unsigned dom = 0, bus = 0, dev = 0, func = 0;
    if (!busid || sscanf(busid, "%x:%x:%x.%x", &dom, &bus, &dev, &func) != 4)
        return -1;
    hwloc_obj_t pci = hwloc_get_pcidev_by_busid(topo, dom, bus, dev, func);
    if (!pci)
        return -1;
    hwloc_obj_t anc = hwloc_get_non_io_ancestor_obj(topo, pci);
    if (!anc || !anc->cpuset || hwloc_bitmap_iszero(anc->cpuset))
        return -1;
    /* The root covering every core says nothing about locality. */
    if (hwloc_bitmap_isequal(anc->cpuset, hwloc_topology_get_topology_cpuset(topo)))
        return -1;
    return hwloc_bitmap_intersects(anc->cpuset, cpuset) ? 1 : 0;
}

int tsr_place_gpu_pick(hwloc_topology_t topo, hwloc_const_bitmap_t cpuset, const char *const *busids, int ngpus,
                       int local_rank)
{
    int near[256], nnear = 0;
    if (ngpus <= 0)
        return -1;
    for (int i = 0; i < ngpus && nnear < 256; i++)
        if (topo && cpuset && tsr_place_gpu_near(topo, cpuset, busids[i]) == 1)
            near[nnear++] = i;
    /* Ranks of one package count up within it, so local_rank modulo the
     * package's GPUs spreads them over those GPUs (0,1 -> its first two). */
    if (nnear > 0)
        return near[local_rank % nnear];
    return local_rank % ngpus;
}
