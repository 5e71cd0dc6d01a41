#!/usr/bin/python3
# SPDX-License-Identifier: BSD-3-Clause
"""PyTorch peer of bench_cnn: the same networks as nn.Sequential (the
Fashion-MNIST CNN, or the residual network with batch norm), softmax
cross-entropy, batch 128, SGD momentum 0.9 lr 0.01, one thread, synthetic
1x28x28 inputs, the standard loop (zero_grad, forward, loss, backward,
step). Median samples/s of --reps runs of --seconds each, in blocks of 4
steps alternating with a 1024^3 torch.mm, whose rate gives PyTorch's
fraction of the SGEMM bound for the net's FLOPs (given by bench_cnn).
--device cuda: the same on the GPU (each block of steps ends with a
torch.cuda.synchronize, so the time is the steps'), against bench_cnn --gpu
in run_gpu_bench.sh.

With --data FILE.h5 (tessera's HDF5: /X uint8 rows with a 'scale'
attribute, /y labels) it instead trains --epochs epochs over that data as
the tessera program does (shuffled batches each epoch, the nets with the
dropout of tests/bench/fashion_cnn.ini and fashion_resnet.ini, SGD momentum
0.9, weight decay 5e-4) and reports samples/s over the training loop only
(data loaded and scaled beforehand), the peer of `tessera train`'s done line.

--channels-last keeps the model and its inputs in channels-last (NHWC)
memory format, with which oneDNN's convolutions run faster here.

Run with Debian's /usr/bin/python3 (python3-torch) and OMP_NUM_THREADS=1,
OPENBLAS_NUM_THREADS=1, as run_cnn_bench.sh does."""
import argparse
import json
import statistics
import time

import torch
from torch import nn

NBATCHES = 8


class Res(nn.Module):
    def __init__(self, body):
        super().__init__()
        self.body = body

    def forward(self, x):
        return x + self.body(x)


def drop(p):
    return [nn.Dropout(p)] if p > 0 else []


def cnn(p=0.0):
    return nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), *drop(p),
                         nn.Linear(64 * 7 * 7, 128), nn.ReLU(), nn.Linear(128, 10))


def block(c):
    return Res(nn.Sequential(nn.Conv2d(c, c, 3, padding=1), nn.BatchNorm2d(c), nn.ReLU(),
                             nn.Conv2d(c, c, 3, padding=1), nn.BatchNorm2d(c)))


def resnet(p=0.0):
    # tests/bench/fashion_resnet.ini (bench_cnn runs it without the dropout)
    return nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
                         block(32), nn.ReLU(), nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(),
                         nn.MaxPool2d(2), block(64), nn.ReLU(), nn.Flatten(), *drop(p), nn.Linear(64 * 7 * 7, 10))


def train_epochs(args):
    """--data: the training loop of `tessera train` over the HDF5 file."""
    import h5py
    with h5py.File(args.data, "r") as f:
        x = torch.from_numpy(f["X"][...]).float() * float(f["X"].attrs.get("scale", 1.0))
        y = torch.from_numpy(f["y"][...]).long()
    x = x.reshape(-1, 1, 28, 28)
    model = (cnn if args.net == "cnn" else resnet)(args.dropout)
    fmt = torch.channels_last if args.channels_last else torch.contiguous_format
    model = model.to(memory_format=fmt)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    loss_fn = nn.CrossEntropyLoss()
    g = torch.Generator().manual_seed(1)
    n = x.shape[0] // args.batch * args.batch
    model.train()
    t0 = time.perf_counter()
    total = 0.0
    steps = 0
    for _ in range(args.epochs):
        perm = torch.randperm(x.shape[0], generator=g)
        for i in range(0, n, args.batch):
            if args.steps and steps == args.steps:
                break
            steps += 1
            idx = perm[i:i + args.batch]
            opt.zero_grad()
            loss = loss_fn(model(x[idx].contiguous(memory_format=fmt)), y[idx])
            loss.backward()
            opt.step()
            total += float(loss)
    dt = time.perf_counter() - t0
    out = {"bench": "torch_cnn_train", "net": args.net, "channels_last": args.channels_last, "torch": torch.__version__, "batch": args.batch,
           "steps": steps, "seconds": dt, "samples_per_s": steps * args.batch / dt, "mean_loss": total / steps}
    print(json.dumps(out) if args.json else out)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--net", choices=["cnn", "resnet"], default="cnn")
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--flops", type=float, default=0, help="FLOPs per sample (bench_cnn's) for the fraction")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--cpu-time", action="store_true", help="time with the process's CPU clock (as bench_cnn's)")
    ap.add_argument("--data", help="tessera HDF5 file: train over it (--epochs) instead of the synthetic loop")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--steps", type=int, default=0, help="with --data: stop after this many steps (0: the epochs)")
    ap.add_argument("--dropout", type=float, default=0.25, help="with --data: the .ini files' dropout (default 0.25)")
    ap.add_argument("--channels-last", action="store_true", help="model and inputs in channels-last memory format")
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(1234)
    dev = torch.device(args.device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        print("SKIP: PyTorch sees no CUDA device")
        raise SystemExit(77)
    if args.data:
        train_epochs(args)
        return
    fmt = torch.channels_last if args.channels_last else torch.contiguous_format
    model = (cnn() if args.net == "cnn" else resnet()).to(dev, memory_format=fmt)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    xs = [torch.rand(args.batch, 1, 28, 28, device=dev).contiguous(memory_format=fmt) for _ in range(NBATCHES)]
    ys = torch.randint(0, 10, (NBATCHES, args.batch), device=dev)
    state = {"next": 0}

    def step():
        b = state["next"]
        state["next"] = (b + 1) % NBATCHES
        opt.zero_grad()
        loss = loss_fn(model(xs[b]), ys[b])
        loss.backward()
        opt.step()

    clock = time.process_time if args.cpu_time else time.perf_counter
    n = 1024
    a, bm, c = torch.rand(n, n, device=dev), torch.rand(n, n, device=dev), torch.empty(n, n, device=dev)

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize()

    for _ in range(3):
        step()
    torch.mm(a, bm, out=c)
    steps, fracs, sq = [], [], []
    for _ in range(args.reps):
        ts = tq = 0.0
        ns = nq = 0
        while ts < args.seconds:
            t0 = clock()
            for _ in range(4):
                step()
            sync()
            t1 = clock()
            torch.mm(a, bm, out=c)
            sync()
            tq += clock() - t1
            ts += t1 - t0
            ns += 4
            nq += 1
        steps.append(ts / ns)
        sq.append(tq / nq)
        fracs.append(args.flops * args.batch / (ts / ns) / (2.0 * n ** 3 / (tq / nq)) if args.flops else 0.0)
    sps = args.batch / statistics.median(steps)
    out = {"bench": "torch_cnn", "device": args.device, "channels_last": args.channels_last, "clock": "cpu" if args.cpu_time else "wall", "net": args.net,
           "torch": torch.__version__, "batch": args.batch,
           "samples_per_s": sps, "square_gflops": 2.0 * n ** 3 / statistics.median(sq) * 1e-9,
           "frac_sgemm_bound": statistics.median(fracs)}
    print(json.dumps(out) if args.json else out)


if __name__ == "__main__":
    main()
