#!/usr/bin/python3
# SPDX-License-Identifier: BSD-3-Clause
"""Replays optim_trace runs against the reference implementations.

  compare_optim.py DIR...

Each DIR holds an optim_trace run and its arguments in DIR/args (one a
line: "weights" or "lr", the steps, then the optim.key=value settings).

The weights: tessera's gradients of each step (grads.f32) go to the
reference optimizer, which starts from tessera's initial weights; after
every step both sets of weights must agree to 1e-5. References:
torch.optim (1.13) for sgd, adamw, adam, rmsprop; torchlars' rule over
torch.optim.SGD for lars; NumPy transcriptions of the papers for lion
(Chen et al. 2023, Algorithm 2) and lamb (You et al. 2020, Algorithm 2).
The lr: torch.optim.lr_scheduler, after a LinearLR warmup. Prints the
largest difference of each; exits 1 if any is above the tolerance. (One
process for every run: importing torch costs seconds.)"""
import os
import sys
import warnings

import numpy as np
import torch

TOL = 1e-5
DEFAULTS = {"name": "sgd", "lr": 0.1, "momentum": 0.9, "nesterov": "false", "weight_decay": 0.0, "beta1": 0.9,
            "beta2": 0.999, "eps": 1e-8, "alpha": 0.99, "centered": "false", "trust_coef": 0.001,
            "exclude": "bias_and_norm", "schedule": "cosine", "warmup_steps": 0, "min_lr": 0.0, "step_size": 0,
            "gamma": 0.1, "milestones": "", "power": 1.0, "max_lr": 0.0, "pct_start": 0.3, "div_factor": 25.0,
            "final_div_factor": 1e4, "plateau_patience": 10, "plateau_factor": 0.1, "plateau_threshold": 1e-4,
            "plateau_cooldown": 0}


def options(pairs):
    o = dict(DEFAULTS)
    given = set()
    for kv in pairs:
        k, v = kv.split("=", 1)
        k = k.split(".", 1)[1]
        given.add(k)
        o[k] = v if isinstance(DEFAULTS[k], str) else type(DEFAULTS[k])(float(v))
    # The optimizers' own defaults where the key was not set (as options.c).
    if o["name"] == "rmsprop" and "momentum" not in given:
        o["momentum"] = 0.0
    if o["name"] == "lion" and "beta2" not in given:
        o["beta2"] = 0.99
    if o["name"] == "lamb" and "eps" not in given:
        o["eps"] = 1e-6
    return o


def lion(ps, grads, o):
    f = np.float32
    lr, b1, b2, wd = f(o["lr"]), f(o["beta1"]), f(o["beta2"]), f(o["weight_decay"])
    m = [np.zeros_like(p) for p in ps]

    def step(gs):
        for p, g, mm in zip(ps, gs, m):
            c = b1 * mm + (f(1) - b1) * g
            p *= f(1) - lr * wd
            p -= lr * np.sign(c)
            mm[:] = b2 * mm + (f(1) - b2) * g
    return step


def lamb(ps, grads, o, excl):
    f = np.float32
    lr, b1, b2, eps, wd = f(o["lr"]), f(o["beta1"]), f(o["beta2"]), f(o["eps"]), f(o["weight_decay"])
    m = [np.zeros_like(p) for p in ps]
    v = [np.zeros_like(p) for p in ps]
    t = [0]

    def step(gs):
        t[0] += 1
        bc1, bc2s = f(1 - o["beta1"] ** t[0]), f(np.sqrt(1 - o["beta2"] ** t[0]))
        for p, g, mm, vv, ex in zip(ps, gs, m, v, excl):
            d = f(0) if ex else wd
            mm[:] = b1 * mm + (f(1) - b1) * g
            vv[:] = b2 * vv + (f(1) - b2) * g * g
            u = (mm / bc1) / (np.sqrt(vv) / bc2s + eps) + d * p
            pn = 0.0 if ex else np.linalg.norm(p.astype(np.float64))
            un = np.linalg.norm(u.astype(np.float64))
            ratio = pn / un if pn > 0 and un > 0 else 1.0
            p -= f(o["lr"] * ratio) * u
    return step


def torch_optimizer(tps, o):
    n, lr, wd = o["name"], o["lr"], o["weight_decay"]
    betas = (o["beta1"], o["beta2"])
    if n == "sgd":
        return torch.optim.SGD(tps, lr=lr, momentum=o["momentum"], nesterov=o["nesterov"] == "true", weight_decay=wd)
    if n == "adamw":
        return torch.optim.AdamW(tps, lr=lr, betas=betas, eps=o["eps"], weight_decay=wd)
    if n == "adam":
        return torch.optim.Adam(tps, lr=lr, betas=betas, eps=o["eps"], weight_decay=wd)
    if n == "rmsprop":
        return torch.optim.RMSprop(tps, lr=lr, alpha=o["alpha"], eps=o["eps"], weight_decay=wd,
                                   momentum=o["momentum"], centered=o["centered"] == "true")
    if n == "lars":  # torchlars wraps SGD without weight decay and applies it itself
        return torch.optim.SGD(tps, lr=lr, momentum=o["momentum"], weight_decay=0)
    raise SystemExit("no torch optimizer for " + n)


def lars_grads(tps, o, excl):
    """torchlars' apply_adaptive_lrs: g = (g + wd p) * trust, in place."""
    with torch.no_grad():
        for p, ex in zip(tps, excl):
            wd = 0.0 if ex else o["weight_decay"]
            trust = 1.0
            if not ex:
                pn, gn = p.norm(), p.grad.norm()
                if pn > 0 and gn > 0:
                    trust = float(o["trust_coef"] * pn / (gn + wd * pn + o["eps"]))
            p.grad.add_(p, alpha=wd)
            p.grad.mul_(trust)


def weights(d, steps, o):
    segs = [tuple(int(x) for x in line.split()) for line in open(os.path.join(d, "segments.txt"))]
    init = np.fromfile(os.path.join(d, "init.f32"), dtype=np.float32)
    n = init.size
    grads = np.fromfile(os.path.join(d, "grads.f32"), dtype=np.float32).reshape(steps, n)
    want = np.fromfile(os.path.join(d, "weights.f32"), dtype=np.float32).reshape(steps, n)
    excl = [o["name"] in ("lars", "lamb") and o["exclude"] == "bias_and_norm" and nd == 1 for _, _, nd in segs]
    split = lambda a: [a[off:off + size] for off, size, _ in segs]
    if o["name"] in ("lion", "lamb"):
        ps = [x.copy() for x in split(init)]
        step = lion(ps, grads, o) if o["name"] == "lion" else lamb(ps, grads, o, excl)
        flat = lambda: np.concatenate(ps)
    else:
        tps = [torch.tensor(x.copy(), requires_grad=True) for x in split(init)]
        opt = torch_optimizer(tps, o)

        def step(gs):
            for p, g in zip(tps, gs):
                p.grad = torch.tensor(g.copy())
            if o["name"] == "lars":
                lars_grads(tps, o, excl)
            opt.step()
        flat = lambda: torch.cat([p.detach() for p in tps]).numpy()
    worst = 0.0
    for i in range(steps):
        step(split(grads[i]))
        worst = max(worst, float(np.max(np.abs(flat().astype(np.float64) - want[i]))))
    return worst


def lrs(d, steps, o):
    got = np.fromfile(os.path.join(d, "lr.f64"), dtype=np.float64)
    metrics = np.fromfile(os.path.join(d, "metrics.f64"), dtype=np.float64)
    w, s = o["warmup_steps"], o["schedule"]
    k = steps - w
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=o["lr"])
    S = torch.optim.lr_scheduler
    if s == "constant":
        sched = S.ConstantLR(opt, factor=1.0, total_iters=0)
    elif s == "cosine":
        sched = S.CosineAnnealingLR(opt, T_max=k, eta_min=o["min_lr"])
    elif s == "step":
        sched = S.StepLR(opt, step_size=o["step_size"], gamma=o["gamma"])
    elif s == "multistep":
        sched = S.MultiStepLR(opt, milestones=[int(x) for x in o["milestones"].split(",")], gamma=o["gamma"])
    elif s == "exponential":
        sched = S.ExponentialLR(opt, gamma=o["gamma"])
    elif s == "polynomial":
        sched = S.PolynomialLR(opt, total_iters=k, power=o["power"])
    elif s == "onecycle":
        sched = S.OneCycleLR(opt, max_lr=o["max_lr"] or o["lr"], total_steps=k, pct_start=o["pct_start"],
                             div_factor=o["div_factor"], final_div_factor=o["final_div_factor"],
                             anneal_strategy="cos", cycle_momentum=False)
    elif s == "plateau":
        sched = S.ReduceLROnPlateau(opt, mode="min", factor=o["plateau_factor"], patience=o["plateau_patience"],
                                    threshold=o["plateau_threshold"], threshold_mode="rel",
                                    cooldown=o["plateau_cooldown"], min_lr=o["min_lr"])
    want = []
    for i in range(k):
        want.append(opt.param_groups[0]["lr"])
        if s == "plateau":
            sched.step(metrics[w + i])
        elif i < k - 1:
            sched.step()
    if w > 1:  # the warmup: LinearLR up to the schedule's first value
        q = torch.nn.Parameter(torch.zeros(1))
        wopt = torch.optim.SGD([q], lr=want[0])
        lin = S.LinearLR(wopt, start_factor=1.0 / w, end_factor=1.0, total_iters=w - 1)
        ramp = []
        for i in range(w):
            ramp.append(wopt.param_groups[0]["lr"])
            lin.step()
        want = ramp + want
    elif w == 1:
        want = [want[0]] + want
    if len(set(want)) < 3 and s not in ("constant", "exponential"):
        raise SystemExit("the %s schedule changed the lr fewer than twice in %d steps: a test that cannot fail" % (s, steps))
    return float(np.max(np.abs(np.array(want) - got)))


def main():
    warnings.filterwarnings("ignore")  # lr_scheduler's "step() before optimizer.step()": no training here
    failed = 0
    for d in sys.argv[1:]:
        args = open(os.path.join(d, "args")).read().split()
        only_lr, steps, o = args[0] == "lr", int(args[1]), options(args[2:])
        worst = lrs(d, steps, o) if only_lr else weights(d, steps, o)
        what = "schedule %s lr" % o["schedule"] if only_lr else "optimizer %s weights" % o["name"]
        bad = not worst <= TOL
        failed += bad
        print("%s: %s: max |tessera - reference| over %d steps = %.3g (%s)" % ("FAIL" if bad else "ok", what, steps,
              worst, " ".join(args[2:])))
    sys.exit(1 if failed else 0)


main()
