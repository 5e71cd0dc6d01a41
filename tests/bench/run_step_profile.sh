#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Where a step's CPU time goes in `tessera train tests/bench/fashion.ini`
# (1 rank, batch 128, one BLAS thread, no evaluation): perf's cpu-clock
# samples (no PMU needed; a VM without one still has this software clock),
# each thread's samples by function, in microseconds of CPU per step
# (samples / frequency / steps). CPU time, not wall time: another job's
# load on a shared machine stretches the wall clock, not these figures.
# Start-up (reading and checking the dataset, loading libraries) lands in
# its own rows; the prefetch thread's gather runs beside the step. The
# step's CPU is the sum of the per-step rows (kernel time and start-up
# left out; "the rest" counted in full, an upper bound); its GEMM share
# is the SGEMM-bound fraction by CPU time. PyTorch's epoch over the same
# data (torch_epoch.py, its process CPU time per step) is the peer, run
# after tessera in the same invocation.
#
# --detail: also each function of the loop's bookkeeping, in microseconds
# per step (where monitoring's own cost shows: run once with
# --set monitor.perf=false and once with it and a trace on). --no-torch:
# skip the PyTorch peer.
#
# Usage: tests/bench/run_step_profile.sh [BUILD_DIR] [--epochs E] [--freq HZ] [--set KEY=VALUE]...
#          [--detail] [--no-torch]
#   defaults: build, 2 epochs, 4000 Hz
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
build=build epochs=2 freq=4000 detail=0 torch=1
sets=()
while [ $# -gt 0 ]; do
  case $1 in
    --epochs) epochs=$2; shift 2 ;;
    --freq) freq=$2; shift 2 ;;
    --set) sets+=(--set "$2"); shift 2 ;;
    --detail) detail=1; shift ;;
    --no-torch) torch=0; shift ;;
    -h|--help) sed -n '2,23p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "run_step_profile.sh: unknown option $1" >&2; exit 2 ;;
    *) build=$1; shift ;;
  esac
done
case $build in /*) ;; *) build=$root/$build ;; esac
bin=$build/tessera
[ -x "$bin" ] || { echo "run_step_profile.sh: $bin not found; build first" >&2; exit 1; }
command -v perf >/dev/null || { echo "run_step_profile.sh: perf not found (apt-get install linux-perf)" >&2; exit 1; }
python=${PYTHON:-/usr/bin/python3}
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
work=$(mktemp -d "${TMPDIR:-/tmp}/tessera-stepprof.XXXXXX")
trap 'rm -rf "$work"' EXIT
# shellcheck source=fashion_h5.sh
. "$here/fashion_h5.sh"
data=${FASHION_H5:-$work/fashion.h5}
[ -f "$data" ] || fashion_h5 "$bin" "$data" || exit 1
cd "$work"
perf record -q -e cpu-clock -F "$freq" -o perf.data "$bin" train "$root/tests/bench/fashion.ini" \
  --set "data.path=$data" --set "train.output=$work/model.h5" --set "checkpoint.dir=$work/ckpt" \
  --set "train.epochs=$epochs" --set train.batch_size=128 --set runtime.blas_threads=1 --set train.eval=false \
  --set train.register=false --set runtime.progress=lines ${sets[@]+"${sets[@]}"} >train.log 2>&1
steps=$(sed -nE 's/.*done: .* ([0-9]+) steps, .*/\1/p' train.log)
[ -n "$steps" ] || { echo "run_step_profile.sh: tessera train failed:" >&2; tail -5 train.log >&2; exit 1; }
perf report -i perf.data --no-children --sort pid,sym -F sample,pid,sym 2>/dev/null | grep -E '^ +[0-9]' >samples.txt
# the batch as run: the log's "batch N" (and its micro-batches, if any)
shape=$(grep -m1 -oE 'x batch [0-9]+[^,]*' train.log | sed 's/^x //' || true)
/usr/bin/python3 - samples.txt "$steps" "$freq" "$detail" "${shape:-batch 128}" <<'PY'
import collections, re, sys
steps, hz, detail, shape = int(sys.argv[2]), float(sys.argv[3]), sys.argv[4] == "1", sys.argv[5]
rows = []
for line in open(sys.argv[1]):
    m = re.match(r"\s+(\d+)\s+(\d+):(\S+)\s+\[(.)\]\s+(\S+)", line)
    if m:
        rows.append((int(m.group(1)), m.group(2), m.group(3), m.group(4), m.group(5)))
per_tid = collections.Counter()
for n, tid, comm, _, _ in rows:
    if comm == "tessera":
        per_tid[tid] += n
main = per_tid.most_common(1)[0][0]
PER_STEP = ("tsr_train", "tsr_loader", "tsr_comm", "tsr_runtime", "tsr_perf", "tsr_trace", "tsr_counter", "tsr_model_",
            "dense_", "layer_", "clock_gettime", "pthread_", "__futex", "__GI___lll", "PMPI_", "ompi_", "opal_", "mca_",
            "MPI_", "grads_ready", "mpi_")
STARTUP = ("tsr_dataset_read", "H5", "_dl_", "do_lookup_x", "clear_page", "_copy_to_iter", "tsr_dataset_check")
GEMM = "GEMMs (oneDNN's JIT or OpenBLAS, with beta = 0 zeroing)"
def kind(tid, comm, priv, sym):
    if comm != "tessera":
        return "mpirun's daemon (start-up)"
    if tid != main:
        return "prefetch thread: batch gather" if sym in ("__memmove_avx512_unaligned_erms", "tsr_dataset_gather") else "other threads"
    # oneDNN's JIT kernels have no symbols: perf names them by address
    if sym.startswith(("sgemm", "cblas_sgemm", "__memset", "0x")) or "dnnl" in sym or "gemm_driver" in sym:
        return GEMM
    if sym.startswith(("tsr_accum", "add_into", "copy_into")):
        return "gradient accumulation (the micro-batches' sums)"
    if sym.startswith("sgd") or "optim" in sym:
        return "optimizer (SGD, momentum, weight decay, finiteness)"
    if "bias_act" in sym:
        return "bias + ReLU (forward)"
    if "act_bias_grad" in sym or "act_backward" in sym:
        return "ReLU mask + bias gradient (backward)"
    if sym in ("xent_row", "model_loss_delta") or re.search(r"(exp|log)", sym):
        return "softmax cross-entropy"
    if sym.startswith(STARTUP):
        return "start-up: reading and checking the dataset"
    if priv == "k":
        return "kernel (preemption by other jobs, page faults, I/O)"
    if sym.startswith(PER_STEP):
        return "loop bookkeeping (loader hand-off, comm engine, MPI agreement, timers, counters)"
    return "the rest (mostly start-up: libraries, configuration, the model file)"
cls = collections.Counter()
for n, tid, comm, priv, sym in rows:
    cls[kind(tid, comm, priv, sym)] += n
print(f"tessera train, Fashion-MNIST MLP, {shape}, 1 rank, 1 BLAS thread: CPU per step over {steps} steps "
      f"({hz:.0f} Hz cpu-clock samples)")
us = {k: n / hz / steps * 1e6 for k, n in cls.items()}
for k, v in sorted(us.items(), key=lambda kv: -kv[1]):
    print(f"  {v:9.1f} us  {k}")
if detail:
    book = collections.Counter()
    for n, tid, comm, priv, sym in rows:
        if kind(tid, comm, priv, sym).startswith("loop bookkeeping"):
            book[sym] += n
    print("  loop bookkeeping by function:")
    for sym, n in book.most_common(25):
        print(f"    {n / hz / steps * 1e6:9.2f} us  {sym}")
step = sum(v for k, v in us.items() if not k.startswith(("start-up", "mpirun", "kernel", "other threads", "the rest")))
gemm = us.get(GEMM, 0)
print(f"  step CPU {step:.1f} us (GEMMs {gemm:.1f} us): SGEMM-bound fraction by CPU time {gemm / step:.3f}")
open("step_us.txt", "w").write(f"{step} {gemm}\n")
PY
((torch)) || exit 0
"$python" "$here/torch_epoch.py" --data "$data" --epochs 2 --batch 128 >torch.json
"$python" - torch.json step_us.txt <<'PY'
import json, statistics as st, sys
t = json.load(open(sys.argv[1]))
step, gemm = map(float, open(sys.argv[2]).read().split())
p = st.median(c / t["steps"] * 1e6 for c in t["epoch_cpu_s"])
print(f"PyTorch {t['torch']} epoch over the same data: CPU {p:.1f} us per step (median of {len(t['epoch_cpu_s'])} epochs); "
      f"tessera / PyTorch by CPU time per step {p / step:.2f}x; PyTorch's GEMM share against tessera's GEMMs {gemm / p:.3f}")
PY
