/* SPDX-License-Identifier: BSD-3-Clause */
/* Learning-rate schedules as torch.optim.lr_scheduler's, after a linear
 * warmup that ramps to the schedule's first value; reduce-on-plateau. */
#include "optim/optim_internal.h"
#include "tessera/error.h"

#include <math.h>

/* OneCycleLR (anneal_strategy cos, two phases) at step k of K. */
static double onecycle(const tsr_optim_config_t *c, long k, long K)
{
    double peak = c->max_lr > 0 ? c->max_lr : c->lr;
    double initial = peak / c->div_factor, floor = initial / c->final_div_factor;
    double end1 = c->pct_start * (double)K - 1, end2 = (double)K - 1;
    double kk = (double)(k < K ? k : K - 1), start, end, pct;
    if (kk <= end1)
        start = initial, end = peak, pct = kk / end1;
    else
        start = peak, end = floor, pct = (kk - end1) / (end2 - end1);
    return end + (start - end) / 2.0 * (cos(M_PI * pct) + 1.0);
}

/* The schedule's value k steps after warmup. */
static double at(const tsr_optim_t *o, long k)
{
    const tsr_optim_config_t *c = &o->cfg;
    long K = c->total_steps - c->warmup_steps;
    switch (c->schedule) {
    case TSR_SCHED_COSINE: {
        if (K <= 0)
            return c->lr;
        double t = k > K ? 1.0 : (double)k / (double)K;
        return c->min_lr + 0.5 * (c->lr - c->min_lr) * (1.0 + cos(M_PI * t));
    }
    case TSR_SCHED_STEP: return c->lr * pow(c->gamma, (double)(k / c->step_size));
    case TSR_SCHED_MULTISTEP: {
        int passed = 0;
        while (passed < c->nmilestones && c->milestones[passed] <= k)
            passed++;
        return c->lr * pow(c->gamma, passed);
    }
    case TSR_SCHED_EXPONENTIAL: return c->lr * pow(c->gamma, (double)k);
    case TSR_SCHED_POLYNOMIAL: {
        if (K <= 0)
            return c->lr;
        double t = k > K ? 1.0 : (double)k / (double)K;
        return c->min_lr + (c->lr - c->min_lr) * pow(1.0 - t, c->power);
    }
    case TSR_SCHED_ONECYCLE: /* a run cut too short for both phases (train.max_steps) stays at lr */
        return c->pct_start * (double)K > 1 && c->pct_start * (double)K < (double)K - 1 ? onecycle(c, k, K) : c->lr;
    case TSR_SCHED_PLATEAU: return o->state[o->nopt + PL_LR];
    default: return c->lr;
    }
}

double tsr_optim_lr(const tsr_optim_t *o, long step)
{
    long w = o->cfg.warmup_steps;
    if (w > 0 && step < w)
        return at(o, 0) * (double)(step + 1) / (double)w;
    return at(o, step - w);
}

/* ReduceLROnPlateau, mode min, threshold_mode rel; best is kept as a float
 * (it lives in the checkpointed state), so a resumed run decides the same. */
void tsr_optim_observe(tsr_optim_t *o, double metric)
{
    const tsr_optim_config_t *c = &o->cfg;
    if (c->schedule != TSR_SCHED_PLATEAU)
        return;
    float *s = o->state + o->nopt;
    if (metric < (double)s[PL_BEST] * (1.0 - c->plateau_threshold)) {
        s[PL_BEST] = (float)metric;
        s[PL_BAD] = 0;
    } else {
        s[PL_BAD] += 1;
    }
    if (s[PL_COOL] > 0) {
        s[PL_COOL] -= 1;
        s[PL_BAD] = 0;
    }
    if (s[PL_BAD] > (float)c->plateau_patience) {
        double old = s[PL_LR], lr = fmax(old * c->plateau_factor, c->min_lr);
        if (old - lr > 1e-8) /* torch's eps: no change too small to matter */
            s[PL_LR] = (float)lr;
        s[PL_COOL] = (float)c->plateau_cooldown;
        s[PL_BAD] = 0;
    }
}

/* What no run can use: a phase longer than the run, a value out of range.
 * Names the configuration key (options.c reads [optim] into the config).
 * The run is the planned one: a cap (train.max_steps) that cuts it short
 * for a quick try is not a schedule that exceeds it. */
int tsr_optim_sched_check(const tsr_optim_config_t *c)
{
    long T = c->planned_steps > 0 ? c->planned_steps : c->total_steps, K = T - c->warmup_steps;
    if (T > 0 && c->warmup_steps > T)
        return tsr_error_set(TSR_EINVAL, "optim.warmup_steps = %ld is longer than the run (%ld steps)", c->warmup_steps,
                             T);
    switch (c->schedule) {
    case TSR_SCHED_STEP:
        if (c->step_size < 1)
            return tsr_error_set(TSR_EINVAL, "optim.step_size = %ld: expected at least 1", c->step_size);
        if (T > 0 && c->step_size > K)
            return tsr_error_set(TSR_EINVAL,
                                 "optim.step_size = %ld is past the run (%ld steps after warmup): the lr "
                                 "would never change",
                                 c->step_size, K);
        break;
    case TSR_SCHED_MULTISTEP:
        if (c->nmilestones < 1)
            return tsr_error_set(TSR_EINVAL, "optim.milestones: expected one or more steps for schedule multistep");
        for (int i = 0; i < c->nmilestones; i++) {
            if (c->milestones[i] < 1 || (i && c->milestones[i] <= c->milestones[i - 1]))
                return tsr_error_set(TSR_EINVAL, "optim.milestones: %ld: expected increasing steps from 1",
                                     c->milestones[i]);
            if (T > 0 && c->milestones[i] > K)
                return tsr_error_set(TSR_EINVAL, "optim.milestones: %ld is past the run (%ld steps after warmup)",
                                     c->milestones[i], K);
        }
        break;
    case TSR_SCHED_ONECYCLE:
        if (!(c->pct_start > 0 && c->pct_start < 1) || !(c->div_factor > 0) || !(c->final_div_factor > 0))
            return tsr_error_set(TSR_EINVAL,
                                 "optim.pct_start = %g, div_factor = %g, final_div_factor = %g: "
                                 "expected 0 < pct_start < 1 and positive factors",
                                 c->pct_start, c->div_factor, c->final_div_factor);
        if (T > 0 && !(c->pct_start * (double)K > 1 && c->pct_start * (double)K < (double)K - 1))
            return tsr_error_set(TSR_EINVAL,
                                 "optim.pct_start = %g: the rise over %ld steps after warmup must be "
                                 "more than 1 step and end before the last",
                                 c->pct_start, K);
        break;
    case TSR_SCHED_PLATEAU:
        if (!(c->plateau_factor > 0 && c->plateau_factor < 1) || !(c->plateau_threshold >= 0))
            return tsr_error_set(TSR_EINVAL,
                                 "optim.plateau_factor = %g, plateau_threshold = %g: expected a "
                                 "factor in (0, 1) and a threshold >= 0",
                                 c->plateau_factor, c->plateau_threshold);
        break;
    default: break;
    }
    if (!(c->gamma > 0) &&
        (c->schedule == TSR_SCHED_STEP || c->schedule == TSR_SCHED_MULTISTEP || c->schedule == TSR_SCHED_EXPONENTIAL))
        return tsr_error_set(TSR_EINVAL, "optim.gamma = %g: expected a value above 0", c->gamma);
    return TSR_OK;
}
