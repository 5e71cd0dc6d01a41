/* SPDX-License-Identifier: BSD-3-Clause */
/* Every configuration key tessera knows, with its type and default. */
#include "config/schema.h"

#include <string.h>

static const char *const act_choices[] = {"relu", "tanh", "sigmoid", "gelu", "silu", NULL};
static const char *const loss_choices[] = {"auto", "cross_entropy", "mse", "huber", "bce", NULL};
static const char *const optim_choices[] = {"sgd", "adamw", "adam", "lion", "lamb", "lars", "rmsprop", NULL};
static const char *const sched_choices[] = {"constant",   "cosine",   "step",    "multistep", "exponential",
                                            "polynomial", "onecycle", "plateau", NULL};
static const char *const exclude_choices[] = {"bias_and_norm", "none", NULL};
static const char *const early_choices[] = {"loss", "accuracy", NULL};
static const char *const repro_choices[] = {"ranks", "world", NULL};
static const char *const comm_choices[] = {"auto", "mpi", "shm", "nccl", NULL};
static const char *const allreduce_choices[] = {"auto", "ring", "rabenseifner", "tree", "alltoall", "hier", NULL};
static const char *const gemm_choices[] = {"auto", "onednn", "openblas", NULL};
static const char *const device_choices[] = {"auto", "cpu", "cuda", NULL};
static const char *const onerr_choices[] = {"continue", "stop", NULL};
static const char *const progress_choices[] = {"auto", "bar", "lines", "none", NULL};
static const char *const nonfinite_choices[] = {"stop", "skip_step", NULL};
static const char *const precision_choices[] = {"fp32", "bf16", "fp16", NULL};
static const char *const comm_prec_choices[] = {"compute", "fp32", NULL};

const tsr_key_t tsr_schema[] = {
    {"data", "path", TSR_T_STR, "", 0, 0, NULL, "HDF5 dataset file (relative to the config file)"},
    {"data", "test_path", TSR_T_STR, "", 0, 0, NULL, "separate test dataset (default: /X_test in path)"},
    {"data", "memory_limit_mb", TSR_T_INT, "4096", 0, 1L << 30, NULL, "read into memory below this size"},
    {"data", "prefetch", TSR_T_BOOL, "true", 0, 0, NULL, "fill the next batch on a helper thread"},
    {"data", "validate", TSR_T_BOOL, "true", 0, 0, NULL, "check every value for NaN/Inf and label range"},
    {"model", "layers", TSR_T_STR, "", 0, 0, NULL,
     "the layer graph, e.g. conv(32,3,pad=1) bn relu maxpool(2) flatten dense(10), or dense widths 784,256,10 (empty: hidden)"},
    {"model", "input", TSR_T_STR, "", 0, 0, NULL,
     "input shape CxHxW of a row (empty: /X's shape attribute, else a flat row)"},
    {"model", "hidden", TSR_T_INTS, "256,256", 1, 1L << 20, NULL, "hidden layer widths (when layers is empty)"},
    {"model", "activation", TSR_T_ENUM, "relu", 0, 0, act_choices, "hidden activation (hidden and width lists)"},
    {"model", "loss", TSR_T_ENUM, "auto", 0, 0, loss_choices, "loss (auto: cross_entropy for labels, mse for targets)"},
    {"model", "outputs", TSR_T_INT, "0", 0, 1L << 20, NULL, "output width (0: from the data)"},
    {"model", "label_smoothing", TSR_T_DOUBLE, "0", 0, 0, NULL, "cross-entropy label smoothing in [0, 1)"},
    {"model", "class_weights", TSR_T_STR, "", 0, 0, NULL,
     "cross-entropy weight per class, comma-separated (empty: all 1)"},
    {"model", "huber_delta", TSR_T_DOUBLE, "1", 0, 0, NULL, "Huber loss threshold"},
    {"model", "sync_bn", TSR_T_BOOL, "false", 0, 0, NULL,
     "batch-norm statistics over every rank's batch (else per rank)"},
    {"model", "plugins", TSR_T_STR, "", 0, 0, NULL,
     "layer plugins (.so), comma-separated, relative to the config file"},
    {"train", "epochs", TSR_T_INT, "10", 1, 1L << 30, NULL, "passes over the training data"},
    {"train", "batch_size", TSR_T_INT, "32", 1, 1L << 24, NULL,
     "samples per rank per forward and backward (the micro-batch with accumulation)"},
    {"train", "accumulate_steps", TSR_T_INT, "1", 1, 1L << 16, NULL,
     "micro-batches whose gradients are summed before each optimizer step"},
    {"train", "global_batch", TSR_T_INT, "0", 0, 1L << 40, NULL,
     "samples per optimizer step over all ranks (0: batch_size x accumulate_steps x ranks); derives the accumulation from the world size"},
    {"train", "reproducible", TSR_T_ENUM, "ranks", 0, 0, repro_choices,
     "ranks: bit-identical runs for a given rank count; world: the same weights on any power-of-two rank count (needs global_batch)"},
    {"train", "seed", TSR_T_INT, "42", 0, 1L << 62, NULL, "seed for weights and shuffling"},
    {"train", "output", TSR_T_STR, "model.h5", 0, 0, NULL, "trained model file (relative to the working directory)"},
    {"train", "log_every", TSR_T_INT, "50", 0, 1L << 30, NULL, "steps between progress lines (0: per epoch)"},
    {"train", "eval", TSR_T_BOOL, "true", 0, 0, NULL, "evaluate on the test split every epoch"},
    {"train", "eval_every", TSR_T_INT, "0", 0, 1L << 40, NULL,
     "also evaluate every this many optimizer steps (0: at epoch ends only)"},
    {"train", "early_stop_patience", TSR_T_INT, "0", 0, 1L << 30, NULL,
     "stop after this many evaluations without improvement (0: never)"},
    {"train", "early_stop_min_delta", TSR_T_DOUBLE, "0", 0, 0, NULL,
     "the least change of the metric that counts as an improvement"},
    {"train", "early_stop_metric", TSR_T_ENUM, "loss", 0, 0, early_choices,
     "the test metric early stopping and keep_best watch: loss (lower is better) or accuracy"},
    {"train", "keep_best", TSR_T_BOOL, "false", 0, 0, NULL, "write the weights of the best evaluation, not the last"},
    {"train", "register", TSR_T_BOOL, "true", 0, 0, NULL, "add the finished model to the [serve] registry"},
    {"train", "max_steps", TSR_T_INT, "0", 0, 1L << 62, NULL, "stop after this many steps (0: no limit)"},
    {"train", "on_nonfinite", TSR_T_ENUM, "stop", 0, 0, nonfinite_choices,
     "NaN or Inf gradients or weights: stop (exit 6, nothing written) or skip_step (skip such updates)"},
    {"train", "precision", TSR_T_ENUM, "fp32", 0, 0, precision_choices,
     "GPU compute: fp32, bf16 or fp16 (fp32 master weights; fp16 with dynamic loss scaling); cuda only"},
    {"train", "loss_scale", TSR_T_DOUBLE, "65536", 0, 0, NULL,
     "fp16: the initial loss scale (GradScaler's init_scale)"},
    {"train", "loss_scale_interval", TSR_T_INT, "2000", 1, 1L << 40, NULL,
     "fp16: finite steps in a row before the loss scale doubles (GradScaler's growth_interval)"},
    {"optim", "name", TSR_T_ENUM, "sgd", 0, 0, optim_choices, "optimizer"},
    {"optim", "lr", TSR_T_DOUBLE, "0.1", 0, 0, NULL, "peak learning rate"},
    {"optim", "momentum", TSR_T_DOUBLE, "0.9", 0, 0, NULL, "sgd, lars and rmsprop momentum (rmsprop: 0 unless set)"},
    {"optim", "nesterov", TSR_T_BOOL, "false", 0, 0, NULL, "sgd: Nesterov momentum"},
    {"optim", "weight_decay", TSR_T_DOUBLE, "0", 0, 0, NULL,
     "L2 (sgd, adam, rmsprop, lars) or decoupled (adamw, lion, lamb) decay"},
    {"optim", "beta1", TSR_T_DOUBLE, "0.9", 0, 0, NULL, "adamw, adam, lamb, lion beta1"},
    {"optim", "beta2", TSR_T_DOUBLE, "0.999", 0, 0, NULL, "adamw, adam, lamb, lion beta2 (lion: 0.99 unless set)"},
    {"optim", "eps", TSR_T_DOUBLE, "1e-8", 0, 0, NULL, "adamw, adam, rmsprop, lars epsilon; lamb (1e-6 unless set)"},
    {"optim", "alpha", TSR_T_DOUBLE, "0.99", 0, 0, NULL, "rmsprop smoothing constant"},
    {"optim", "centered", TSR_T_BOOL, "false", 0, 0, NULL, "rmsprop: normalise by the centered variance"},
    {"optim", "trust_coef", TSR_T_DOUBLE, "0.001", 0, 0, NULL, "lars trust coefficient (eta)"},
    {"optim", "exclude", TSR_T_ENUM, "bias_and_norm", 0, 0, exclude_choices,
     "lars, lamb: tensors without decay or trust ratio (bias_and_norm: every 1-d tensor)"},
    {"optim", "schedule", TSR_T_ENUM, "cosine", 0, 0, sched_choices, "learning-rate schedule after warmup"},
    {"optim", "warmup_steps", TSR_T_INT, "0", 0, 1L << 40, NULL, "linear warmup steps (to the schedule's first lr)"},
    {"optim", "min_lr", TSR_T_DOUBLE, "0", 0, 0, NULL, "cosine and polynomial end, plateau floor"},
    {"optim", "step_size", TSR_T_INT, "0", 0, 1L << 40, NULL, "step: steps between decays (required)"},
    {"optim", "gamma", TSR_T_DOUBLE, "0.1", 0, 0, NULL, "step, multistep, exponential: decay factor"},
    {"optim", "milestones", TSR_T_INTS, "", 1, 1L << 40, NULL,
     "multistep: steps after warmup where lr *= gamma (required)"},
    {"optim", "power", TSR_T_DOUBLE, "1", 0, 0, NULL, "polynomial exponent"},
    {"optim", "max_lr", TSR_T_DOUBLE, "0", 0, 0, NULL, "onecycle peak (0: optim.lr)"},
    {"optim", "pct_start", TSR_T_DOUBLE, "0.3", 0, 0, NULL, "onecycle: share of the steps rising to max_lr"},
    {"optim", "div_factor", TSR_T_DOUBLE, "25", 0, 0, NULL, "onecycle: first lr = max_lr / div_factor"},
    {"optim", "final_div_factor", TSR_T_DOUBLE, "1e4", 0, 0, NULL, "onecycle: last lr = first lr / final_div_factor"},
    {"optim", "plateau_patience", TSR_T_INT, "10", 0, 1L << 30, NULL,
     "plateau: evaluations without improvement before a cut"},
    {"optim", "plateau_factor", TSR_T_DOUBLE, "0.1", 0, 0, NULL, "plateau: lr *= factor at a cut"},
    {"optim", "plateau_threshold", TSR_T_DOUBLE, "1e-4", 0, 0, NULL, "plateau: relative improvement that counts"},
    {"optim", "plateau_cooldown", TSR_T_INT, "0", 0, 1L << 30, NULL, "plateau: evaluations ignored after a cut"},
    {"optim", "clip_norm", TSR_T_DOUBLE, "0", 0, 0, NULL, "clip the global gradient norm (0: off)"},
    {"runtime", "device", TSR_T_ENUM, "cpu", 0, 0, device_choices,
     "where to train: cpu, cuda (one GPU per rank, nearest by hwloc), auto (cuda when every rank has a GPU)"},
    {"runtime", "comm", TSR_T_ENUM, "auto", 0, 0, comm_choices, "gradient reduction back-end (nccl on GPUs)"},
    {"runtime", "comm_precision", TSR_T_ENUM, "compute", 0, 0, comm_prec_choices,
     "gradients reduced in the compute precision (train.precision; nccl) or fp32"},
    {"runtime", "allreduce_algorithm", TSR_T_ENUM, "auto", 0, 0, allreduce_choices,
     "allreduce between ranks (mpi) or node leaders (shm): auto picks per bucket size and world"},
    {"runtime", "topology", TSR_T_STR, "auto", 0, 0, NULL,
     "which ranks share a leaf switch, for hier: auto (SLURM_TOPOLOGY_ADDR), none, node, or a SLURM topology.conf "
     "(relative to the config file)"},
    {"runtime", "bucket_kb", TSR_T_INT, "1024", 1, 1L << 30, NULL, "gradient bucket size in KiB"},
    {"runtime", "bind", TSR_T_BOOL, "true", 0, 0, NULL, "bind ranks to cores with hwloc"},
    {"runtime", "blas_threads", TSR_T_INT, "0", 0, 4096, NULL, "BLAS threads per rank (0: cores owned)"},
    {"runtime", "gemm", TSR_T_ENUM, "auto", 0, 0, gemm_choices,
     "CPU GEMM library: auto (oneDNN where built with it), onednn, openblas"},
    {"runtime", "progress", TSR_T_ENUM, "auto", 0, 0, progress_choices, "bar on a terminal, lines in a log"},
    {"runtime", "verbose", TSR_T_BOOL, "false", 0, 0, NULL, "log from every rank"},
    {"runtime", "watchdog_seconds", TSR_T_DOUBLE, "600", 0, 0, NULL,
     "abort when a collective or checkpoint stalls this long (0: off)"},
    {"runtime", "walltime_margin_seconds", TSR_T_DOUBLE, "120", 0, 0, NULL,
     "under SLURM, checkpoint and stop (exit 75) this long before the job's end"},
    {"checkpoint", "dir", TSR_T_STR, "checkpoints", 0, 0, NULL,
     "checkpoint directory (relative to the working directory)"},
    {"checkpoint", "every_steps", TSR_T_INT, "0", 0, 1L << 40, NULL, "write every N steps (0: not by steps)"},
    {"checkpoint", "every_seconds", TSR_T_DOUBLE, "600", 0, 0, NULL, "write every S seconds (0: not by time)"},
    {"checkpoint", "keep", TSR_T_INT, "3", 1, 1000000, NULL, "newest checkpoints kept"},
    {"checkpoint", "async", TSR_T_BOOL, "true", 0, 0, NULL, "write on a helper thread while training goes on"},
    {"checkpoint", "on_error", TSR_T_ENUM, "continue", 0, 0, onerr_choices, "when a write fails: warn or stop"},
    {"checkpoint", "resume", TSR_T_STR, "none", 0, 0, NULL, "none, auto (newest that verifies) or a file"},
    {"checkpoint", "final", TSR_T_BOOL, "true", 0, 0, NULL, "write a checkpoint when training ends"},
    /* [monitor], counters and resource use (src/perf; issue 17, "Counters"). */
    {"monitor", "perf", TSR_T_BOOL, "true", 0, 0, NULL,
     "phase timers and resource use per rank in the report, /status and /metrics"},
    {"monitor", "papi_events", TSR_T_STR, "", 0, 0, NULL,
     "PAPI events counted per rank and phase, e.g. PAPI_TOT_INS,PAPI_TOT_CYC (empty: none)"},
    /* The rank-0 coordinator (src/serve); paths are relative to the working directory. */
    {"serve", "enabled", TSR_T_BOOL, "false", 0, 0, NULL, "run the HTTP coordinator on rank 0 while training"},
    {"serve", "bind", TSR_T_STR, "127.0.0.1", 0, 0, NULL, "listen address (other than loopback needs token_file)"},
    {"serve", "port", TSR_T_INT, "0", 0, 65535, NULL,
     "TCP port (0: any free port, written to run_dir/coordinator.addr)"},
    {"serve", "token_file", TSR_T_STR, "", 0, 0, NULL, "bearer token file, not readable by others (empty: no token)"},
    {"serve", "run_dir", TSR_T_STR, ".", 0, 0, NULL, "directory for coordinator.addr (host:port)"},
    {"serve", "registry", TSR_T_STR, "registry", 0, 0, NULL, "model registry directory"},
    {"serve", "max_batch", TSR_T_INT, "64", 1, 65536, NULL, "most rows per batched model call"},
    {"serve", "max_delay_us", TSR_T_INT, "500", 0, 10000000, NULL, "longest a prediction waits for its batch to fill"},
    {"serve", "cache_mb", TSR_T_INT, "64", 0, 1L << 20, NULL, "prediction cache budget in MiB (0: no cache)"},
    {"serve", "cache_ttl_s", TSR_T_DOUBLE, "300", 0, 0, NULL, "prediction cache time-to-live (0: forever)"},
    {"serve", "max_body_kb", TSR_T_INT, "1024", 1, 1L << 20, NULL, "request body limit in KiB"},
    {"serve", "max_upload_mb", TSR_T_INT, "512", 1, 1L << 20, NULL, "model upload limit in MiB (POST /models)"},
    {"serve", "threads", TSR_T_INT, "0", 0, 1024, NULL, "HTTP threads (0: one per core this process may use)"},
    {"serve", "max_connections", TSR_T_INT, "2048", 1, 1L << 20, NULL, "open HTTP connections in all"},
    {"serve", "max_connections_per_ip", TSR_T_INT, "512", 1, 1L << 20, NULL,
     "open HTTP connections from one client address"},
    {"serve", "header_timeout_s", TSR_T_INT, "10", 1, 3600, NULL,
     "seconds a connection has to send a request's headers (an idle keep-alive one too)"},
    {"serve", "max_model_params", TSR_T_INT, "134217728", 1, 1L << 40, NULL,
     "most parameters a served, uploaded or registered model file may declare"},
    /* Monitoring (src/trace): the timeline. */
    {"monitor", "trace", TSR_T_STR, "", 0, 0, NULL,
     "write each rank's timeline as Chrome trace JSON: trace.json -> trace.rank<N>.json (empty: none)"},
    {"monitor", "trace_buffer", TSR_T_INT, "262144", 16, 1L << 28, NULL,
     "timeline events kept per thread (the oldest are dropped, and counted, past it)"},
    /* tessera submit: the SLURM batch job built from this file (--nodes etc. override). */
    {"submit", "nodes", TSR_T_INT, "1", 1, 1L << 20, NULL, "nodes (sbatch --nodes)"},
    {"submit", "ntasks_per_node", TSR_T_INT, "1", 1, 1L << 16, NULL, "ranks per node (sbatch --ntasks-per-node)"},
    {"submit", "cpus_per_task", TSR_T_INT, "0", 0, 1L << 16, NULL, "cores per rank (0: SLURM's default)"},
    {"submit", "gpus_per_task", TSR_T_INT, "0", 0, 1024, NULL, "GPUs per rank (sbatch --gpus-per-task)"},
    {"submit", "time", TSR_T_STR, "1:00:00", 0, 0, NULL, "walltime: MM, HH:MM:SS or D-HH:MM:SS"},
    {"submit", "partition", TSR_T_STR, "", 0, 0, NULL, "partition (empty: the cluster's default)"},
    {"submit", "account", TSR_T_STR, "", 0, 0, NULL, "account to charge (empty: your default)"},
    {"submit", "job_name", TSR_T_STR, "", 0, 0, NULL, "job name (empty: tessera-<config name>)"},
    {"submit", "output", TSR_T_STR, "tessera-%j.out", 0, 0, NULL,
     "job log, relative to the submit directory (%j: job id)"},
    {"submit", "mpi", TSR_T_STR, "pmix", 0, 0, NULL, "srun --mpi plugin"},
    {NULL, NULL, 0, NULL, 0, 0, NULL, NULL},
};

const tsr_key_t *tsr_schema_find(const char *section, const char *key)
{
    for (const tsr_key_t *k = tsr_schema; k->section; k++)
        if (strcmp(k->section, section) == 0 && strcmp(k->key, key) == 0)
            return k;
    return NULL;
}

int tsr_schema_has_section(const char *section)
{
    for (const tsr_key_t *k = tsr_schema; k->section; k++)
        if (strcmp(k->section, section) == 0)
            return 1;
    return 0;
}
