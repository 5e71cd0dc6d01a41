#!/usr/bin/python3
# SPDX-License-Identifier: BSD-3-Clause
"""PyTorch peer of `tessera train tests/bench/fashion.ini` timed by epoch
(run_epoch_bench.sh): the 784-256-256-10 ReLU MLP, softmax cross-entropy,
SGD momentum 0.9 with weight decay, one thread, over the Fashion-MNIST HDF5
file that fashion_h5.sh writes (uint8 rows scaled to [0, 1] per batch, as
tessera's loader does). Each epoch draws a fresh permutation and trains on
its full batches in that order (the batch gathered from the shuffled rows
every step, the usual index-a-tensor loop); the evaluation is not timed, as
tessera's epoch rate leaves it out. Prints one JSON line with every
epoch's wall seconds and CPU seconds (process_time: immune to other jobs'
load on a shared machine, which stretches only the wall clock). Run with Debian's /usr/bin/python3 (python3-torch, h5py)."""
import argparse
import json
import sys
import time

import h5py
import torch
from torch import nn

SIZES = (784, 256, 256, 10)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="the HDF5 file (/X uint8 with a scale attribute, /y int32)")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--accum", type=int, default=1,
                    help="micro-batches of --batch rows per optimizer step (each backward of loss / accum)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(1)
    with h5py.File(args.data, "r") as f:
        X = torch.from_numpy(f["X"][...])
        scale = float(f["X"].attrs.get("scale", 1.0))
        y = torch.from_numpy(f["y"][...].astype("int64"))
    n = X.shape[0]
    k = max(args.accum, 1)
    steps = n // (args.batch * k)
    layers = []
    for i in range(len(SIZES) - 1):
        layers.append(nn.Linear(SIZES[i], SIZES[i + 1]))
        if i < len(SIZES) - 2:
            layers.append(nn.ReLU())
    model = nn.Sequential(*layers)
    opt = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9, weight_decay=5e-4)
    loss_fn = nn.CrossEntropyLoss()
    times, cpu, losses = [], [], []
    for _ in range(args.epochs):
        t0, c0 = time.perf_counter(), time.process_time()
        perm = torch.randperm(n)
        total = torch.zeros(())
        for s in range(steps):
            opt.zero_grad()
            for i in range(k):
                lo = (s * k + i) * args.batch
                idx = perm[lo:lo + args.batch]
                xb = X[idx].float().mul_(scale)
                loss = loss_fn(model(xb), y[idx])
                (loss / k if k > 1 else loss).backward()
                total += loss.detach() / k
            opt.step()
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
        losses.append(float(total) / steps)
    print(json.dumps({"bench": "torch_epoch", "torch": torch.__version__, "batch": args.batch, "accum": k, "steps": steps,
                      "samples": steps * args.batch * k, "epoch_s": [round(t, 4) for t in times], "epoch_cpu_s": [round(t, 4) for t in cpu],
                      "loss": [round(v, 4) for v in losses]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
