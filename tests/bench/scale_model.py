#!/usr/bin/python3
# SPDX-License-Identifier: BSD-3-Clause
"""Analytic cost model of tessera's allreduce, fitted to SimGrid simulations
(run_scale_bench.sh writes OUT/sim.tsv), checked against the simulations it
did not fit, and used to predict to 4,096 ranks and to predict the
weak-scaling efficiency of data-parallel training. Prints Markdown.

Model of one bucket of M bytes on P ranks, cut into k pieces in flight
(k = min(16, max(1, M / 128 KiB)); for the ring at most 4, or up to 16 on
32 ranks or fewer and 8 on 64 while its slices stay 16 KiB, as
src/comm/alg_select.c cuts them):

    T = max(b V, R a + w b V / k) + c X + g W / k

The pieces share the link, so the bucket takes at least its bytes' time
(b V); but each piece goes through its R rounds one after another, each a
latency a plus its own bytes at a share of the link (R a + w b V / k, w
between 1, pieces staggered so each round has the link to itself, and k,
pieces in lock step sharing it; min(w, k) is used): the ring's small
slices on many ranks are bound by that chain, not by the link.
R: rounds one piece goes through: ring 2(P-1), rabenseifner 2 log2 P' + 2f,
   tree log2 P' + 2f;
V: bytes each rank sends: ring 2(P-1)/P M, rabenseifner 2(P'-1)/P' M + 2fM,
   tree (log2 P' + 2f) M;
X: bytes each rank sends across leaf switches in rounds where all ranks of
   a leaf do (the fat-tree's 4:1 taper; 0 on the flat cluster and for the
   ring, whose one flow per leaf boundary is never congested);
W: bytes each rank sums: ring (P-1)/P M, rabenseifner (P'-1)/P' M + fM,
   tree (log2 P' + f) M; one piece's share (W/k) is not hidden behind the
   other pieces' transfers.
(P' = largest power of two <= P, f = 1 when P is not one.) b is the
platform's link (1 / 3.125 GB/s), not fitted; a and w (grid search) and
c, g (least squares on relative error) are fitted per platform.

Usage: scale_model.py OUT_DIR [--fit-ranks 16,64,256] [--step-ms mlp=MS,cnn=MS]
"""
import math
import os
import sys

import numpy as np

LEAF = 16
LINK = 3.125  # GB/s: the simulated 25 Gb/s links
MIN_PIECE, MAX_PIECES, RING_PIECES = 128 << 10, 16, 4


def pieces(m, alg, p=None):
    """Pieces of a bucket of m bytes (tsr_alg_pieces); p None: the ring's
    count as auto judges it (at most 4)."""
    k = min(RING_PIECES if alg == "ring" else MAX_PIECES, max(1, m // MIN_PIECE))
    if alg == "ring" and p is not None:
        most = 16 if p <= 32 else 8 if p <= 64 else RING_PIECES
        k = max(k, min(most, m // (p * (16 << 10))))
    return k


def shape(p):
    p2 = 1 << int(math.floor(math.log2(p)))
    return p2, int(math.log2(p2)), 1.0 if p2 != p else 0.0


def terms(alg, p, m, fattree):
    """R, V, X, W (see the module docstring) for one bucket of m bytes."""
    p2, lg, f = shape(p)
    if alg == "ring":
        return 2.0 * (p - 1), 2.0 * (p - 1) / p * m, 0.0, (p - 1.0) / p * m
    x = 0.0
    if fattree and p2 > LEAF:
        # rounds at distance >= LEAF: every rank of a leaf crosses to another
        for j in range(int(math.log2(LEAF)), lg):
            x += (m / 2 ** (j + 1)) if alg == "rabenseifner" else m
        x *= 2 if alg == "rabenseifner" else 1
    if alg == "rabenseifner":
        return 2.0 * lg + 2 * f, 2.0 * (p2 - 1) / p2 * m + 2 * f * m, x, (p2 - 1.0) / p2 * m + f * m
    return lg + 2 * f, (lg + 2 * f) * m, x, (lg + f) * m


def row(alg, p, m, fattree):
    r, v, x, w = terms(alg, p, m, fattree)
    k = pieces(m, alg, p)
    return r, v, x, w / k, k


B = 1 / (LINK * 1e9)


def base(a, alg, p, m, fattree, w=1.0):
    """max(b V, R a + w b V / k): the part of T that a and w decide."""
    r, v, _, _, k = row(alg, p, m, fattree)
    return max(B * v, r * a + min(w, k) * B * v / k)


def load(out):
    rows = []
    with open(os.path.join(out, "sim.tsv")) as f:
        for line in f:
            if line.startswith("#") or not line.strip():
                continue
            c = line.rstrip("\n").split("\t")
            rows.append(dict(plat=c[0], size=int(c[1]), method=c[2], p=int(c[3]), t=float(c[5]),
                             busbw=float(c[7]), alg=c[9], wall=float(c[10]), pss=int(c[11]),
                             cpu=float(c[12]) if len(c) > 12 and c[12] else float("nan"),
                             load=c[13] if len(c) > 13 else "-"))
    return rows


def fit(rows, fattree):
    """(a, c, g, w): a (0-20 us) and w (1-4) by grid search, c and g by
    least squares on relative error for each; the pair with the least
    squared error."""
    best = None
    for w in np.arange(1.0, 4.01, 0.25):
        for a in np.arange(0, 20e-6, 0.05e-6):
            cols = [2, 3] if fattree else [3]
            mat = np.array([[row(r["alg"], r["p"], r["size"], fattree)[c] / r["t"] for c in cols] for r in rows])
            rhs = np.array([1 - base(a, r["alg"], r["p"], r["size"], fattree, w) / r["t"] for r in rows])
            got, *_ = np.linalg.lstsq(mat, rhs, rcond=None)
            err = float(np.sum((mat @ got - rhs) ** 2))
            if best is None or err < best[0]:
                best = (err, a, got[0] if fattree else 0.0, got[-1], w)
    return best[1:]


def predict(coef, alg, p, m, fattree):
    a, c, g, w = coef
    r, v, x, wk, k = row(alg, p, m, fattree)
    return base(a, alg, p, m, fattree, w) + c * x + g * wk


def auto_alg(p, m):
    """What tsr_alg_choose picks for big buckets: the ring when its slices
    are 16 KiB or more (4 KiB when P is not a power of two)."""
    _, _, f = shape(p)
    slice_ = m / pieces(m, "ring") / p
    return "ring" if slice_ >= (4 << 10 if f else 16 << 10) else "rabenseifner"


def mib(m):
    return f"{m >> 20} MiB" if m >= 1 << 20 else f"{m >> 10} KiB"


def busbw(m, p, t):
    return m / t / 1e9 * 2 * (p - 1) / p


def main():
    args = sys.argv[1:]
    if not args:
        sys.exit(__doc__)
    out = args[0]
    fit_ranks = {16, 64, 256}
    step_ms = None
    if "--fit-ranks" in args:
        fit_ranks = {int(x) for x in args[args.index("--fit-ranks") + 1].split(",")}
    if "--step-ms" in args:  # mlp=2.4,cnn=40
        step_ms = {k: float(v) for k, v in (x.split("=") for x in args[args.index("--step-ms") + 1].split(","))}
    rows = load(out)
    plats = sorted({r["plat"] for r in rows})

    print("## Simulated busbw: tessera auto against SMPI's MPI_Allreduce (ompi selector)\n")
    for plat in plats:
        print(f"### {plat}\n")
        print("| ranks | size | auto runs | auto busbw | MPI_Allreduce | auto / MPI | MPI_Allreduce, sums charged "
              "| auto / charged | wall s (auto) | CPU s (auto) | Pss MiB (auto) |")
        print("|---|---|---|---|---|---|---|---|---|---|---|")
        keys = sorted({(r["p"], r["size"]) for r in rows if r["plat"] == plat})
        for p, m in keys:
            get = {r["method"]: r for r in rows if r["plat"] == plat and r["p"] == p and r["size"] == m}
            au, ar, ao = get.get("mpi:auto:0"), get.get("allreduce"), get.get("allreduce-op")
            if not au:
                continue
            cell = lambda x: f"{x['busbw']:.3f}" if x else "not run"
            ratio = lambda x: f"{au['busbw'] / x['busbw']:.3f}" if x else "-"
            print(f"| {p} | {mib(m)} | {au['alg']} | {au['busbw']:.3f} | {cell(ar)} | {ratio(ar)} | {cell(ao)} | "
                  f"{ratio(ao)} | {au['wall']:.0f} | {au['cpu']:.1f} | {au['pss'] / 1024:.0f} |")
        print()

    print("## Every simulation: its cost on this machine\n")
    print("| platform | ranks | size | method | ran | simulated ms | busbw | of link | wall s | CPU s | load | Pss MiB |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in sorted(rows, key=lambda r: (r["plat"], r["p"], r["size"], r["method"])):
        print(f"| {r['plat']} | {r['p']} | {mib(r['size'])} | {r['method']} | {r['alg']} | {r['t'] * 1e3:.3f} | "
              f"{r['busbw']:.3f} | {r['busbw'] / LINK:.3f} | {r['wall']:.0f} | {r['cpu']:.1f} | {r['load']} | "
              f"{r['pss'] / 1024:.0f} |")
    print()

    print("## Cost model: fit and check\n")
    coefs = {}
    for plat in plats:
        ft = plat == "fattree"
        seen, mine = set(), []
        for r in rows:  # auto and the algorithm by name are one simulation twice
            key = (r["p"], r["size"], r["alg"])
            if r["plat"] == plat and r["method"].startswith("mpi:") and r["alg"] != "-" and key not in seen:
                seen.add(key)
                mine.append(r)
        train = [r for r in mine if r["p"] in fit_ranks]
        test = [r for r in mine if r["p"] not in fit_ranks]
        if len(train) < 4:
            print(f"{plat}: too few simulations to fit ({len(train)})\n")
            continue
        coef = fit(train, ft)
        coefs[plat] = coef
        err = lambda rs: [abs(predict(coef, r["alg"], r["p"], r["size"], ft) / r["t"] - 1) for r in rs]
        e_tr, e_te = err(train), err(test)
        print(f"**{plat}**: a = {coef[0] * 1e6:.2f} us/round, w = {coef[3]:.2f}, b = 1/{LINK} GB/s (the link), "
              + (f"c = {coef[1] / B:.2f} b per crossing byte, " if ft else "")
              + f"g = 1/{1 / coef[2] / 1e9 if coef[2] > 0 else float('inf'):.2f} GB/s (exposed sums). "
              f"Fitted on {len(train)} simulations (ranks {sorted(fit_ranks)}): median |error| "
              f"{100 * np.median(e_tr):.1f}%, max {100 * max(e_tr):.1f}%. Checked on {len(test)} it did not fit "
              f"(ranks {sorted({r['p'] for r in test})}): median {100 * np.median(e_te) if e_te else 0:.1f}%, "
              f"max {100 * max(e_te) if e_te else 0:.1f}%.\n")
        print("| ranks | size | algorithm | simulated ms | model ms | error |")
        print("|---|---|---|---|---|---|")
        for r in sorted(test, key=lambda r: (r["p"], r["size"], r["alg"])):
            t = predict(coef, r["alg"], r["p"], r["size"], ft)
            print(f"| {r['p']} | {mib(r['size'])} | {r['alg']} | {r['t'] * 1e3:.3f} | {t * 1e3:.3f} | "
                  f"{100 * (t / r['t'] - 1):+.1f}% |")
        print()

    print("## Predicted busbw (GB/s) to 4,096 ranks\n")
    sizes = [1 << 20, 16 << 20, 64 << 20, 256 << 20]
    for plat, coef in coefs.items():
        ft = plat == "fattree"
        print(f"### {plat} (the algorithm auto picks, alg_select.c's rule)\n")
        print("| ranks | " + " | ".join(mib(m) for m in sizes) + " |")
        print("|---|" + "---|" * len(sizes))
        for p in [256, 512, 1024, 2048, 4096]:
            cells = []
            for m in sizes:
                alg = auto_alg(p, m)
                cells.append(f"{busbw(m, p, predict(coef, alg, p, m, ft)):.3f} ({alg})")
            print(f"| {p} | " + " | ".join(cells) + " |")
        print()

    val = os.path.join(out, "validate.tsv")
    if os.path.exists(val):
        print("## Validation: SMPI on a platform calibrated to this machine against real Open MPI\n")
        print("| ranks | size | method | real ms | simulated ms | error |")
        print("|---|---|---|---|---|---|")
        with open(val) as f:
            for line in f:
                if line.startswith("#") or not line.strip():
                    continue
                p, m, meth, real, simt = line.split("\t")
                real, simt = float(real), float(simt)
                print(f"| {p} | {mib(int(m))} | {meth} | {real * 1e3:.3f} | {simt * 1e3:.3f} | "
                      f"{100 * (simt / real - 1):+.1f}% |")
        print()

    if step_ms and coefs:
        print("## Weak scaling of training, predicted\n")
        train_table(coefs, step_ms)


# Parameters of the two benchmark models (tests/bench/fashion.ini, the
# 784-256-256-10 MLP; fashion_cnn.ini, conv(32,3) conv(64,3) dense(128)
# dense(10) on 1x28x28), counted as the layers declare them.
MODELS = {
    "mlp": 784 * 256 + 256 + 256 * 256 + 256 + 256 * 10 + 10,
    "cnn": (9 * 32 + 32) + (32 * 9 * 64 + 64) + (64 * 7 * 7 * 128 + 128) + (128 * 10 + 10),
}
BUCKET = 1 << 20  # runtime.bucket_kb's default


def train_table(coefs, steps):
    """Weak scaling of data-parallel training: per step, the measured compute
    time (steps: model -> ms, one rank) plus every gradient bucket's
    allreduce from the model, none of it hidden behind backward (a
    conservative bound: the engine starts buckets as backward produces them).
    efficiency = compute / (compute + allreduce)."""
    for name, step_ms in steps.items():
        n = MODELS[name] * 4
        lens = [min(BUCKET, n - b * BUCKET) for b in range((n + BUCKET - 1) // BUCKET)]
        print(f"### {name}: {MODELS[name]} parameters (buckets of {', '.join(str(x) for x in lens)} bytes), "
              f"{step_ms:.2f} ms of compute per step\n")
        print("| nodes | " + " | ".join(f"{p}: allreduce ms | {p}: efficiency" for p in coefs) + " |")
        print("|---|" + "---|---|" * len(coefs))
        for p in [2, 4, 16, 64, 256, 1024]:
            cells = []
            for plat, coef in coefs.items():
                ft = plat == "fattree"
                t = sum(min(predict(coef, a, p, m, ft) for a in ("ring", "rabenseifner", "tree")) for m in lens)
                cells.append(f"{t * 1e3:.3f} | {step_ms / (step_ms + t * 1e3):.3f}")
            print(f"| {p} | " + " | ".join(cells) + " |")
        print()


if __name__ == "__main__":
    main()
