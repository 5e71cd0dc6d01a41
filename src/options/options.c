/* SPDX-License-Identifier: BSD-3-Clause */
/* The configuration's keys mapped onto the modules' typed options: the one
 * place that looks them up by name (options.h). */
#include "tessera/options.h"
#include "tessera/error.h"

#include <math.h>
#include <string.h>

static const char *get(const tsr_config_t *c, const char *section, const char *key)
{
    return tsr_config_get(c, section, key);
}

static int is(const tsr_config_t *c, const char *section, const char *key, const char *value)
{
    return strcmp(get(c, section, key), value) == 0;
}

int tsr_options_serve(const tsr_config_t *c, tsr_serve_config_t *o)
{
    tsr_serve_config_default(o);
    o->bind = get(c, "serve", "bind");
    o->port = (int)tsr_config_get_long(c, "serve", "port");
    o->token_file = get(c, "serve", "token_file");
    o->run_dir = get(c, "serve", "run_dir");
    o->registry = get(c, "serve", "registry");
    o->max_batch = (int)tsr_config_get_long(c, "serve", "max_batch");
    o->max_delay_us = (int)tsr_config_get_long(c, "serve", "max_delay_us");
    o->cache_mb = (size_t)tsr_config_get_long(c, "serve", "cache_mb");
    o->cache_ttl_s = tsr_config_get_double(c, "serve", "cache_ttl_s");
    o->max_body_kb = (size_t)tsr_config_get_long(c, "serve", "max_body_kb");
    o->max_upload_mb = (size_t)tsr_config_get_long(c, "serve", "max_upload_mb");
    o->threads = (int)tsr_config_get_long(c, "serve", "threads");
    o->max_connections = (int)tsr_config_get_long(c, "serve", "max_connections");
    o->max_connections_per_ip = (int)tsr_config_get_long(c, "serve", "max_connections_per_ip");
    o->header_timeout_s = (int)tsr_config_get_long(c, "serve", "header_timeout_s");
    o->max_model_params = (size_t)tsr_config_get_long(c, "serve", "max_model_params");
    if (!o->bind || !o->run_dir || !o->registry)
        return tsr_error_set(TSR_EINTERNAL, "config: the [serve] section is missing from the schema");
    return TSR_OK;
}

static void data_options(const tsr_config_t *c, tsr_data_options_t *o)
{
    o->path = get(c, "data", "path");
    o->test_path = get(c, "data", "test_path");
    o->memory_limit = (size_t)tsr_config_get_long(c, "data", "memory_limit_mb") << 20;
    o->prefetch = tsr_config_get_bool(c, "data", "prefetch");
    o->validate = tsr_config_get_bool(c, "data", "validate");
}

static void model_options(const tsr_config_t *c, tsr_model_options_t *o)
{
    o->layers = get(c, "model", "layers");
    o->input = get(c, "model", "input");
    o->nhidden = tsr_config_get_ints(c, "model", "hidden", o->hidden, TSR_MODEL_MAX_LAYERS / 2 - 1);
    o->activation = (tsr_act_t)tsr_act_parse(get(c, "model", "activation"));
    o->loss = is(c, "model", "loss", "auto") ? TSR_LOSS_AUTO : tsr_loss_parse(get(c, "model", "loss"));
    o->outputs = tsr_config_get_long(c, "model", "outputs");
    o->label_smoothing = tsr_config_get_double(c, "model", "label_smoothing");
    o->huber_delta = tsr_config_get_double(c, "model", "huber_delta");
    o->class_weights = get(c, "model", "class_weights");
    o->sync_bn = tsr_config_get_bool(c, "model", "sync_bn");
    o->plugins = get(c, "model", "plugins");
    o->plugins_dir = tsr_config_dir(c);
}

static void loop_options(const tsr_config_t *c, tsr_loop_options_t *o)
{
    o->epochs = tsr_config_get_long(c, "train", "epochs");
    o->batch_size = (size_t)tsr_config_get_long(c, "train", "batch_size");
    o->accumulate_steps = tsr_config_get_long(c, "train", "accumulate_steps");
    o->global_batch = tsr_config_get_long(c, "train", "global_batch");
    o->reproducible_world = is(c, "train", "reproducible", "world");
    o->seed = (uint64_t)tsr_config_get_long(c, "train", "seed");
    o->output = get(c, "train", "output");
    o->log_every = tsr_config_get_long(c, "train", "log_every");
    o->eval = tsr_config_get_bool(c, "train", "eval");
    o->register_model = tsr_config_get_bool(c, "train", "register");
    o->eval_every = tsr_config_get_long(c, "train", "eval_every");
    o->early_stop_patience = tsr_config_get_long(c, "train", "early_stop_patience");
    o->early_stop_min_delta = tsr_config_get_double(c, "train", "early_stop_min_delta");
    o->early_stop_accuracy = is(c, "train", "early_stop_metric", "accuracy");
    o->keep_best = tsr_config_get_bool(c, "train", "keep_best");
    o->max_steps = tsr_config_get_long(c, "train", "max_steps");
    o->on_nonfinite = is(c, "train", "on_nonfinite", "skip_step") ? TSR_NONFINITE_SKIP : TSR_NONFINITE_STOP;
    o->precision = is(c, "train", "precision", "bf16")   ? TSR_PRECISION_BF16
                   : is(c, "train", "precision", "fp16") ? TSR_PRECISION_FP16
                                                         : TSR_PRECISION_FP32;
    o->loss_scale = tsr_config_get_double(c, "train", "loss_scale");
    o->loss_scale_interval = tsr_config_get_long(c, "train", "loss_scale_interval");
}

/* train.precision against the device and the loss-scaling keys. */
static int check_precision(const tsr_config_t *c, const tsr_train_options_t *o)
{
    char set[96] = "";
    /* Half precision exists on the GPU path only: no silent fp32 run. */
    if (o->train.precision != TSR_PRECISION_FP32 && o->runtime.device == TSR_DEVICE_CPU)
        return tsr_error_set(TSR_EINVAL,
                             "[train] precision = %s (%s) needs runtime.device = cuda (or auto on GPU nodes): "
                             "the CPU trains in fp32 only",
                             get(c, "train", "precision"), tsr_config_origin(c, "train", "precision"));
    if (o->train.precision != TSR_PRECISION_FP16 &&
        (tsr_config_changed(c, "train", "loss_scale", set, sizeof set) ||
         tsr_config_changed(c, "train", "loss_scale_interval", set, sizeof set)))
        return tsr_error_set(TSR_EINVAL, "[train] %s does not apply to train.precision = %s (loss scaling is fp16's)",
                             set + strlen("train."), get(c, "train", "precision"));
    double s = o->train.loss_scale;
    if (!(s >= 1 && s <= 0x1p100) || frexp(s, &(int){0}) != 0.5)
        return tsr_error_set(TSR_EINVAL,
                             "[train] loss_scale = %g (%s): expected a power of two from 1 to 2^100 (so that "
                             "unscaling is exact)",
                             s, tsr_config_origin(c, "train", "loss_scale"));
    return TSR_OK;
}

/* Which [optim] keys each optimizer and schedule reads (besides name, lr,
 * weight_decay, schedule, warmup_steps and clip_norm): a key the choice
 * does not read is refused rather than silently ignored. */
static const char *const optim_names[] = {"sgd", "adamw", "adam", "lion", "lamb", "lars", "rmsprop", NULL};
static const char *const optim_takes[] = {"momentum nesterov",
                                          "beta1 beta2 eps",
                                          "beta1 beta2 eps",
                                          "beta1 beta2",
                                          "beta1 beta2 eps exclude",
                                          "momentum eps trust_coef exclude",
                                          "alpha eps momentum centered"};
static const char *const sched_names[] = {"constant",   "cosine",   "step",    "multistep", "exponential",
                                          "polynomial", "onecycle", "plateau", NULL};
static const char *const sched_takes[] = {"",
                                          "min_lr",
                                          "step_size gamma",
                                          "milestones gamma",
                                          "gamma",
                                          "power min_lr",
                                          "max_lr pct_start div_factor final_div_factor",
                                          "plateau_patience plateau_factor plateau_threshold plateau_cooldown min_lr"};

static int index_of(const char *const *names, const char *v)
{
    for (int i = 0; names[i]; i++)
        if (strcmp(names[i], v) == 0)
            return i;
    return 0;
}

static int has_word(const char *list, const char *w)
{
    size_t n = strlen(w);
    for (const char *p = list; (p = strstr(p, w)); p += n)
        if ((p == list || p[-1] == ' ') && (p[n] == ' ' || !p[n]))
            return 1;
    return 0;
}

static int set_by_user(const tsr_config_t *c, const char *key)
{
    char buf[64];
    return tsr_config_changed(c, "optim", key, buf, sizeof buf) > 0;
}

static int check_optim_keys(const tsr_config_t *c, int kind, int sched)
{
    static const char *const keys[] = {"momentum",
                                       "nesterov",
                                       "beta1",
                                       "beta2",
                                       "eps",
                                       "alpha",
                                       "centered",
                                       "trust_coef",
                                       "exclude",
                                       "min_lr",
                                       "step_size",
                                       "gamma",
                                       "milestones",
                                       "power",
                                       "max_lr",
                                       "pct_start",
                                       "div_factor",
                                       "final_div_factor",
                                       "plateau_patience",
                                       "plateau_factor",
                                       "plateau_threshold",
                                       "plateau_cooldown",
                                       NULL};
    for (int i = 0; keys[i]; i++) {
        const char *k = keys[i];
        if (!set_by_user(c, k) || has_word(optim_takes[kind], k) || has_word(sched_takes[sched], k))
            continue;
        int of_optim = 0;
        for (int j = 0; optim_names[j]; j++)
            of_optim |= has_word(optim_takes[j], k);
        const char *what = of_optim ? "name" : "schedule", *choice = of_optim ? optim_names[kind] : sched_names[sched];
        char takes[160] = "";
        const char *list = of_optim ? optim_takes[kind] : sched_takes[sched];
        for (size_t j = 0, o = 0; list[j] && o + 3 < sizeof takes; j++) {
            if (list[j] == ' ')
                takes[o++] = ',';
            takes[o++] = list[j];
            takes[o] = '\0';
        }
        return tsr_error_set(TSR_EINVAL, "[optim] %s (%s) does not apply to optim.%s = %s (it takes %s)", k,
                             tsr_config_origin(c, "optim", k), what, choice, takes[0] ? takes : "no options");
    }
    return TSR_OK;
}

/* A value the user did not set, defaulting as the optimizer's reference does. */
static double or_default(const tsr_config_t *c, const char *key, double dflt)
{
    return set_by_user(c, key) ? tsr_config_get_double(c, "optim", key) : dflt;
}

static int optim_options(const tsr_config_t *c, const tsr_loop_options_t *loop, tsr_optim_config_t *o)
{
    int kind = index_of(optim_names, get(c, "optim", "name")),
        sched = index_of(sched_names, get(c, "optim", "schedule"));
    o->kind = (tsr_optim_kind_t)kind;
    o->lr = tsr_config_get_double(c, "optim", "lr");
    o->momentum = tsr_config_get_double(c, "optim", "momentum");
    o->weight_decay = tsr_config_get_double(c, "optim", "weight_decay");
    o->nesterov = tsr_config_get_bool(c, "optim", "nesterov");
    o->beta1 = tsr_config_get_double(c, "optim", "beta1");
    o->beta2 = tsr_config_get_double(c, "optim", "beta2");
    o->eps = tsr_config_get_double(c, "optim", "eps");
    /* torch.optim.RMSprop's, the Lion paper's and apex FusedLAMB's defaults. */
    if (o->kind == TSR_OPTIM_RMSPROP)
        o->momentum = or_default(c, "momentum", 0);
    if (o->kind == TSR_OPTIM_LION)
        o->beta2 = or_default(c, "beta2", 0.99);
    if (o->kind == TSR_OPTIM_LAMB)
        o->eps = or_default(c, "eps", 1e-6);
    o->alpha = tsr_config_get_double(c, "optim", "alpha");
    o->centered = tsr_config_get_bool(c, "optim", "centered");
    o->trust_coef = tsr_config_get_double(c, "optim", "trust_coef");
    o->exclude_bias_norm = is(c, "optim", "exclude", "bias_and_norm");
    o->schedule = (tsr_sched_t)sched;
    o->warmup_steps = tsr_config_get_long(c, "optim", "warmup_steps");
    o->total_steps = 0;
    o->min_lr = tsr_config_get_double(c, "optim", "min_lr");
    o->step_size = tsr_config_get_long(c, "optim", "step_size");
    o->gamma = tsr_config_get_double(c, "optim", "gamma");
    o->nmilestones = tsr_config_get_ints(c, "optim", "milestones", o->milestones, TSR_OPTIM_MAX_MILESTONES);
    o->power = tsr_config_get_double(c, "optim", "power");
    o->max_lr = tsr_config_get_double(c, "optim", "max_lr");
    o->pct_start = tsr_config_get_double(c, "optim", "pct_start");
    o->div_factor = tsr_config_get_double(c, "optim", "div_factor");
    o->final_div_factor = tsr_config_get_double(c, "optim", "final_div_factor");
    o->plateau_patience = tsr_config_get_long(c, "optim", "plateau_patience");
    o->plateau_cooldown = tsr_config_get_long(c, "optim", "plateau_cooldown");
    o->plateau_factor = tsr_config_get_double(c, "optim", "plateau_factor");
    o->plateau_threshold = tsr_config_get_double(c, "optim", "plateau_threshold");
    o->clip_norm = tsr_config_get_double(c, "optim", "clip_norm");
    o->on_nonfinite = loop->on_nonfinite;
    return check_optim_keys(c, kind, sched);
}

static void runtime_options(const tsr_config_t *c, tsr_runtime_options_t *o)
{
    o->device = is(c, "runtime", "device", "cuda")   ? TSR_DEVICE_CUDA
                : is(c, "runtime", "device", "auto") ? TSR_DEVICE_AUTO
                                                     : TSR_DEVICE_CPU;
    o->comm = get(c, "runtime", "comm");
    o->allreduce_algorithm = get(c, "runtime", "allreduce_algorithm");
    o->topology = get(c, "runtime", "topology");
    o->comm_fp32 = is(c, "runtime", "comm_precision", "fp32");
    o->bucket_bytes = (size_t)tsr_config_get_long(c, "runtime", "bucket_kb") << 10;
    o->bind = tsr_config_get_bool(c, "runtime", "bind");
    o->blas_threads = (int)tsr_config_get_long(c, "runtime", "blas_threads");
    o->gemm = is(c, "runtime", "gemm", "onednn")     ? TSR_GEMM_ONEDNN
              : is(c, "runtime", "gemm", "openblas") ? TSR_GEMM_OPENBLAS
                                                     : TSR_GEMM_AUTO;
    o->verbose = tsr_config_get_bool(c, "runtime", "verbose");
    o->progress = is(c, "runtime", "progress", "bar")     ? TSR_PROGRESS_BAR
                  : is(c, "runtime", "progress", "lines") ? TSR_PROGRESS_LINES
                  : is(c, "runtime", "progress", "none")  ? TSR_PROGRESS_NONE
                                                          : TSR_PROGRESS_AUTO;
    o->watchdog_seconds = tsr_config_get_double(c, "runtime", "watchdog_seconds");
    o->walltime_margin_seconds = tsr_config_get_double(c, "runtime", "walltime_margin_seconds");
}

static void ckpt_options(const tsr_config_t *c, tsr_ckpt_options_t *o)
{
    o->engine.dir = get(c, "checkpoint", "dir");
    o->engine.every_steps = tsr_config_get_long(c, "checkpoint", "every_steps");
    o->engine.every_seconds = tsr_config_get_double(c, "checkpoint", "every_seconds");
    o->engine.keep = (int)tsr_config_get_long(c, "checkpoint", "keep");
    o->engine.async = tsr_config_get_bool(c, "checkpoint", "async");
    o->stop_on_error = is(c, "checkpoint", "on_error", "stop");
    o->final = tsr_config_get_bool(c, "checkpoint", "final");
    o->resume = get(c, "checkpoint", "resume");
}

int tsr_options_train(const tsr_config_t *c, tsr_train_options_t *o)
{
    memset(o, 0, sizeof *o);
    o->config = c;
    data_options(c, &o->data);
    model_options(c, &o->model);
    loop_options(c, &o->train);
    int rc = optim_options(c, &o->train, &o->optim);
    if (rc)
        return rc;
    runtime_options(c, &o->runtime);
    if ((rc = check_precision(c, o)))
        return rc;
    ckpt_options(c, &o->checkpoint);
    o->perf.on = tsr_config_get_bool(c, "monitor", "perf");
    o->perf.papi_events = get(c, "monitor", "papi_events");
    o->serve_enabled = tsr_config_get_bool(c, "serve", "enabled");
    o->monitor.trace = get(c, "monitor", "trace");
    o->monitor.trace_buffer = (size_t)tsr_config_get_long(c, "monitor", "trace_buffer");
    return tsr_options_serve(c, &o->serve);
}
