#!/usr/bin/python3
# SPDX-License-Identifier: BSD-3-Clause
"""PyTorch peer of bench_train: the same 784-256-256-10 ReLU MLP, softmax
cross-entropy, batch 128, SGD momentum 0.9 lr 0.01, one thread, synthetic
data of the same shape, the standard loop (zero_grad, forward, loss,
backward, step). Median samples/s of --reps runs of --seconds each; like
bench_train, blocks of 16 steps alternate with 16 passes of the step's GEMMs
alone (torch.mm into preallocated outputs), giving PyTorch's fraction of its
own SGEMM bound measured under the same conditions.

Run with Debian's /usr/bin/python3 (python3-torch); set OPENBLAS_NUM_THREADS=1
and OMP_NUM_THREADS=1 in the environment as run_train_bench.sh does."""
import argparse
import json
import statistics
import sys
import time

import torch
from torch import nn

NBATCHES = 60
SIZES = (784, 256, 256, 10)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=3.0, help="seconds per timed run (default 3)")
    ap.add_argument("--reps", type=int, default=5, help="timed runs; the median is reported (default 5)")
    ap.add_argument("--batch", type=int, default=128, help="batch size (default 128)")
    ap.add_argument("--json", action="store_true", help="print one JSON line")
    ap.add_argument("--device", default="cpu", help="cpu or cuda (run_gpu_bench.sh's peer; default cpu)")
    ap.add_argument("--amp", choices=("fp32", "bf16", "fp16"), default="fp32",
                    help="cuda: the step under torch.autocast in this type (fp16 with a GradScaler; default fp32)")
    args = ap.parse_args()
    if args.seconds <= 0 or args.reps < 1 or args.batch < 1:
        ap.error("expected --seconds > 0, --reps >= 1, --batch >= 1")

    torch.set_num_threads(1)
    torch.manual_seed(1234)
    dev = torch.device(args.device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        print("SKIP: torch.cuda.is_available() is False")
        return 77
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    layers = []
    for i in range(len(SIZES) - 1):
        layers.append(nn.Linear(SIZES[i], SIZES[i + 1]))
        if i < len(SIZES) - 2:
            layers.append(nn.ReLU())
    model = nn.Sequential(*layers).to(dev)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    xs = torch.rand(NBATCHES, args.batch, SIZES[0])
    ys = torch.randint(0, SIZES[-1], (NBATCHES, args.batch))
    if dev.type == "cuda":
        # Batches start in pinned host memory and are copied per step, as
        # bench_gpu_train uploads each batch.
        xs, ys = xs.pin_memory(), ys.pin_memory()
    state = {"next": 0, "loss": 0.0}
    amp = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(args.amp)
    scaler = torch.cuda.amp.GradScaler() if args.amp == "fp16" else None

    def step():
        b = state["next"]
        state["next"] = (b + 1) % NBATCHES
        opt.zero_grad()
        x, y = xs[b].to(dev, non_blocking=True), ys[b].to(dev, non_blocking=True)
        if amp is None:
            loss = loss_fn(model(x), y)
            loss.backward()
            opt.step()
            return loss
        # tessera's train.precision peer: autocast's half GEMMs, fp32 master weights.
        with torch.autocast(device_type=dev.type, dtype=amp):
            loss = loss_fn(model(x), y)
        if scaler is None:
            loss.backward()
            opt.step()
        else:
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
        return loss

    # Peer: the step's GEMMs alone through torch.mm into preallocated outputs
    # (forward X W^T, backward dW = delta^T X and dX = delta W, no dX for the
    # input layer), on the same input batches, like bench_train's peer.
    nl = len(SIZES) - 1
    ws = [(torch.rand(SIZES[i + 1], SIZES[i]) * 0.1 - 0.05).to(dev) for i in range(nl)]
    gws = [torch.empty(SIZES[i + 1], SIZES[i], device=dev) for i in range(nl)]
    acts = [None] + [torch.rand(args.batch, SIZES[i], device=dev) for i in range(1, nl + 1)]
    deltas = [None] + [(torch.rand(args.batch, SIZES[i]) * 0.02 - 0.01).to(dev) for i in range(1, nl + 1)]
    xdev = xs.to(dev)
    gstate = {"next": 0}

    def gemms():
        b = gstate["next"]
        gstate["next"] = (b + 1) % NBATCHES
        acts[0] = xdev[b]
        for i in range(nl):
            torch.mm(acts[i], ws[i].t(), out=acts[i + 1])
        for i in range(nl - 1, -1, -1):
            torch.mm(deltas[i + 1].t(), acts[i], out=gws[i])
            if i > 0:
                torch.mm(deltas[i + 1], ws[i], out=deltas[i])

    block = 16

    def timed(seconds):
        """Blocks of training steps alternating with blocks of the GEMM peer
        until `seconds` of steps are timed: seconds per step and per peer."""
        ts = tg = 0.0
        n = 0
        while ts < seconds:
            t0 = time.perf_counter()
            for _ in range(block):
                step()
            sync()
            t1 = time.perf_counter()
            for _ in range(block):
                gemms()
            sync()
            t2 = time.perf_counter()
            ts += t1 - t0
            tg += t2 - t1
            n += block
        return ts / n, tg / n

    gemms()
    timed(min(args.seconds, 1.0))  # warmup
    runs = [timed(args.seconds) for _ in range(args.reps)]
    t = statistics.median(r[0] for r in runs)
    tg = statistics.median(r[1] for r in runs)
    frac = statistics.median(r[1] / r[0] for r in runs)
    sps = args.batch / t
    if args.json:
        print(json.dumps({"bench": "torch_mlp", "torch": torch.__version__, "device": str(dev), "amp": args.amp, "batch": args.batch, "reps": args.reps,
                          "seconds": args.seconds, "threads": torch.get_num_threads(),
                          "samples_per_s": round(sps, 1), "step_ms": round(1e3 * t, 4),
                          "gemm_step_ms": round(1e3 * tg, 4), "frac_sgemm_bound": round(frac, 4)}))
    else:
        print(f"PyTorch {torch.__version__} training step, MLP 784-256-256-10 relu, batch {args.batch}, "
              f"SGD momentum, {torch.get_num_threads()} thread")
        print(f"  median of {args.reps} runs of {args.seconds:.1f} s")
        print(f"  step                  {1e3 * t:8.3f} ms   {sps:10.0f} samples/s")
        print(f"  SGEMM at step shapes  {1e3 * tg:8.3f} ms   {args.batch / tg:10.0f} samples/s")
        print(f"  achieved / SGEMM-bound {frac:7.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
