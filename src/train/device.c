/* SPDX-License-Identifier: BSD-3-Clause */
/* Where a rank trains: runtime.device = cpu, cuda or auto. On CUDA each
 * rank takes one GPU of its own, the nearest to the cores it is bound to
 * (hwloc: the GPU's PCI device under the rank's package or NUMA domain),
 * and the model, the optimizer state and the gradient buffer move there.
 * "auto" means cuda when every rank has a GPU of its own, else cpu for
 * everyone: ranks never mix devices. */
#include "train/setup.h"
#include "tessera/error.h"
#include "tessera/place.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { MAXGPU = 64, MAXLOCAL = 1024 };

/* This rank's GPU by locality; -1 when it has none. */
static int pick_gpu(tsr_train_ctx_t *ctx, int count)
{
    char ids[MAXGPU][32];
    const char *busids[MAXGPU];
    hwloc_topology_t topo = NULL;
    hwloc_bitmap_t set = hwloc_bitmap_alloc();
    int n = count < MAXGPU ? count : MAXGPU, dev = -1;
    for (int i = 0; i < n; i++) {
        if (tsr_gpu_pci_busid(i, ids[i], sizeof ids[i]) != TSR_OK)
            ids[i][0] = '\0';
        busids[i] = ids[i];
    }
    if (set && hwloc_topology_init(&topo) == 0 &&
        hwloc_topology_set_io_types_filter(topo, HWLOC_TYPE_FILTER_KEEP_IMPORTANT) == 0 &&
        hwloc_topology_load(topo) == 0 && hwloc_get_cpubind(topo, set, HWLOC_CPUBIND_PROCESS) == 0)
        dev = tsr_place_gpu_pick(topo, set, busids, n, tsr_runtime_local_rank(ctx->rt));
    else
        dev = tsr_place_gpu_pick(NULL, NULL, busids, n, tsr_runtime_local_rank(ctx->rt));
    if (topo)
        hwloc_topology_destroy(topo);
    hwloc_bitmap_free(set);
    return dev;
}

/* 1 when this rank's GPU (bus id in mine) is also another node rank's;
 * *any: whether some rank of the node clashes. Collective over node. */
static int clashes(MPI_Comm node, int lr, int ls, const char *mine, char *all, int *any)
{
    enum { ID = 32 };
    int clash = 0;
    MPI_Allgather(mine, ID, MPI_CHAR, all, ID, MPI_CHAR, node);
    for (int i = 0; i < ls; i++)
        clash |= i != lr && mine[0] && strcmp(all + (size_t)i * ID, mine) == 0;
    MPI_Allreduce(&clash, any, 1, MPI_INT, MPI_MAX, node);
    return clash;
}

/* The node's ranks must use distinct physical GPUs (NCCL refuses two
 * ranks on one). Compared by PCI bus id, which names the physical device
 * whatever CUDA_VISIBLE_DEVICES shows each rank (under srun
 * --gpus-per-task=1 every rank sees its own GPU as device 0). On a clash,
 * local rank order is tried when this rank sees enough devices. Returns
 * the device, or -1 when this rank has no GPU of its own. */
static int distinct_on_node(tsr_train_ctx_t *ctx, int dev, int count)
{
    enum { ID = 32 };
    int ls = tsr_runtime_local_size(ctx->rt), lr = tsr_runtime_local_rank(ctx->rt), any = 0, enough = count >= ls;
    char mine[ID] = "";
    /* Set-up runs on the main thread only; no allocation that could fail
     * on some ranks and leave the others in a collective. */
    static char all[MAXLOCAL * ID];
    MPI_Comm node = tsr_runtime_node(ctx->rt);
    if (ls > MAXLOCAL)
        return -1; /* the same on every rank of the node */
    if (dev >= 0 && tsr_gpu_pci_busid(dev, mine, sizeof mine) != TSR_OK)
        snprintf(mine, sizeof mine, "device-%d", dev);
    int clash = clashes(node, lr, ls, mine, all, &any);
    int every = enough;
    MPI_Allreduce(&enough, &every, 1, MPI_INT, MPI_MIN, node);
    if (any && every) {
        if (lr == 0)
            tsr_log(TSR_LOG_WARN,
                    "GPU placement: locality would put two ranks of %s on one GPU; using GPU = local "
                    "rank instead",
                    tsr_runtime_hostname(ctx->rt));
        dev = lr;
        if (tsr_gpu_pci_busid(dev, mine, sizeof mine) != TSR_OK)
            snprintf(mine, sizeof mine, "device-%d", dev);
        clash = clashes(node, lr, ls, mine, all, &any);
    }
    return clash ? -1 : dev;
}

int tsr_train_device_setup(tsr_train_ctx_t *ctx, int *failed_rank)
{
    tsr_device_choice_t want = ctx->opt->runtime.device;
    int count = tsr_gpu_count(), ls = tsr_runtime_local_size(ctx->rt), all = 0, rc = TSR_OK;
    if (want == TSR_DEVICE_CPU)
        return TSR_OK;
    /* Collective on every rank, GPUs or not. */
    int dev = distinct_on_node(ctx, count > 0 ? pick_gpu(ctx, count) : -1, count);
    int mine = dev >= 0;
    MPI_Allreduce(&mine, &all, 1, MPI_INT, MPI_MIN, tsr_runtime_world(ctx->rt));
    if (!all && want == TSR_DEVICE_AUTO && ctx->opt->train.precision != TSR_PRECISION_FP32) {
        /* Never a silent fp32 run of a half-precision configuration. */
        rc = tsr_error_set(TSR_EINVAL,
                           "[train] precision = %s (%s) needs a GPU on every rank, but runtime.device = auto "
                           "found none on some rank (rank %d on %s sees %d CUDA device%s); train with "
                           "precision = fp32 on the CPU",
                           ctx->opt->train.precision == TSR_PRECISION_BF16 ? "bf16" : "fp16",
                           tsr_config_origin(ctx->opt->config, "train", "precision"), ctx->rank,
                           tsr_runtime_hostname(ctx->rt), count, count == 1 ? "" : "s");
        return tsr_runtime_agree(ctx->rt, rc, failed_rank);
    }
    if (!all && want == TSR_DEVICE_AUTO) {
        if (ctx->rank == 0)
            tsr_log(TSR_LOG_INFO,
                    "runtime.device = auto: training on the CPU (not every rank has a GPU of its own; "
                    "rank 0's %s shows %d CUDA device%s to each of its %d rank%s)",
                    tsr_runtime_hostname(ctx->rt), count, count == 1 ? "" : "s", ls, ls == 1 ? "" : "s");
        return TSR_OK;
    }
    if (!mine) {
        /* Says why there is no device (e.g. "built without CUDA"). */
        tsr_gpu_t *probe = NULL;
        char why[512] = ""; /* a copy: the message buffer is about to be rewritten */
        if (count == 0 && tsr_gpu_create(0, &probe) != TSR_OK)
            snprintf(why, sizeof why, "%s", tsr_last_error());
        tsr_gpu_destroy(probe);
        rc = tsr_error_set(TSR_EINVAL,
                           "[runtime] device = cuda (%s): rank %d on %s has no GPU of its own (%d CUDA "
                           "device%s visible, %d rank%s on the node); expected one per rank%s%s",
                           tsr_config_origin(ctx->opt->config, "runtime", "device"), ctx->rank,
                           tsr_runtime_hostname(ctx->rt), count, count == 1 ? "" : "s", ls, ls == 1 ? "" : "s",
                           why[0] ? ": " : "", why);
    } else if (!all) {
        rc = tsr_error_set(TSR_EINVAL, "rank %d: another rank has no GPU of its own", ctx->rank);
    }
    if ((rc = tsr_runtime_agree(ctx->rt, rc, failed_rank)))
        return rc;
    tsr_train_net_t *net = &ctx->net;
    rc = tsr_gpu_create(dev, &net->gpu);
    if (!rc)
        rc = tsr_model_to_gpu_precision(net->model, net->gpu, ctx->opt->train.precision);
    if (!rc)
        rc = tsr_optim_to_gpu(net->optim, net->gpu);
    if (!rc) {
        size_t used = strlen(ctx->sched.placement);
        snprintf(ctx->sched.placement + used, sizeof ctx->sched.placement - used, " gpu %d", dev);
        static const char *const prec[] = {"fp32", "bf16 (fp32 master weights)",
                                           "fp16 (fp32 master weights, dynamic loss scaling)"};
        tsr_log(TSR_LOG_INFO, "training on GPU %d (%s) of %s in %s", dev, tsr_gpu_name(net->gpu),
                tsr_runtime_hostname(ctx->rt), prec[ctx->opt->train.precision]);
    }
    return tsr_runtime_agree(ctx->rt, rc, failed_rank);
}
