#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Issue 16's MLP target for the program as users run it: `tessera train
# tests/bench/fashion.ini` on 1 rank, batch 128, one BLAS thread, timed by
# epoch (shuffled batches gathered from the HDF5 rows, the loop's per-step
# bookkeeping included, evaluation excluded as its epoch rate excludes
# it), against PyTorch's epoch over the same data (torch_epoch.py), run
# alternately in each round. Each round also runs bench_train (1 s x 3)
# for the step's GEMMs alone at the same shapes: the SGEMM-bound rate that
# both programs' epoch rates are divided by. A run's rate is the median of
# its epochs; printed: per-round figures, the medians and ranges over
# rounds of tessera/PyTorch and of each program's SGEMM-bound fraction.
# PyTorch runs twice per round: as installed, and with glibc's malloc told
# to keep freed memory (MALLOC_TRIM_THRESHOLD_, MALLOC_TOP_PAD_: as
# installed it gives its big buffers back to the kernel every step and
# faults them in again); both ratios are printed, the tuned one being the
# peer a user who tunes PyTorch gets.
# Builds nothing: build first (tessera and bench_train).
#
# Usage: tests/bench/run_epoch_bench.sh [BUILD_DIR] [--rounds R] [--epochs E] [--batch B] [--set KEY=VALUE]...
#   defaults: build, 3 rounds, 3 epochs, batch 128; --set passes to tessera train
# Environment: PYTHON (default /usr/bin/python3, with python3-torch and python3-h5py).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
build=build rounds=3 epochs=3 batch=128
sets=()
while [ $# -gt 0 ]; do
  case $1 in
    --rounds) rounds=$2; shift 2 ;;
    --epochs) epochs=$2; shift 2 ;;
    --batch) batch=$2; shift 2 ;;
    --set) sets+=(--set "$2"); shift 2 ;;
    -h|--help) sed -n '2,17p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "run_epoch_bench.sh: unknown option $1" >&2; exit 2 ;;
    *) build=$1; shift ;;
  esac
done
case $build in /*) ;; *) build=$root/$build ;; esac
bin=$build/tessera bench=$build/tests/bench/bench_train
python=${PYTHON:-/usr/bin/python3}
for f in "$bin" "$bench"; do
  [ -x "$f" ] || { echo "run_epoch_bench.sh: $f not found; build it first" >&2; exit 1; }
done
"$python" -c 'import torch, h5py' 2>/dev/null || { echo "run_epoch_bench.sh: $python lacks torch or h5py" >&2; exit 1; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
work=$(mktemp -d "${TMPDIR:-/tmp}/tessera-epochbench.XXXXXX")
trap 'rm -rf "$work"' EXIT
# shellcheck source=fashion_h5.sh
. "$here/fashion_h5.sh"
data=${FASHION_H5:-$work/fashion.h5}
[ -f "$data" ] || fashion_h5 "$bin" "$data" || exit 1
cd "$work"
out=results.txt
: >"$out"
for ((r = 1; r <= rounds; r++)); do
  echo "round $r/$rounds: tessera train..." >&2
  mpiexec --bind-to none -n 1 "$bin" train "$root/tests/bench/fashion.ini" --set "data.path=$data" \
    --set "train.output=$work/model.h5" --set "checkpoint.dir=$work/ckpt" --set "train.epochs=$epochs" \
    --set "train.batch_size=$batch" --set runtime.blas_threads=1 --set runtime.progress=lines ${sets[@]+"${sets[@]}"} 2>&1 |
    sed -nE 's/.*epoch [0-9]+\/[0-9]+ train loss .* ([0-9.]+) samples\/s$/\1/p' | tr '\n' ' ' |
    sed "s/^/$r tessera /; s/\$/\n/" >>"$out"
  echo "round $r/$rounds: pytorch..." >&2
  "$python" "$here/torch_epoch.py" --data "$data" --epochs "$epochs" --batch "$batch" | sed "s/^/$r torch /" >>"$out"
  env MALLOC_TRIM_THRESHOLD_=68719476736 MALLOC_TOP_PAD_=1073741824 \
    "$python" "$here/torch_epoch.py" --data "$data" --epochs "$epochs" --batch "$batch" | sed "s/^/$r tuned /" >>"$out"
  echo "round $r/$rounds: the step's GEMMs (bench_train)..." >&2
  "$bench" --seconds 1 --reps 3 --batch "$batch" --json | sed "s/^/$r gemm /" >>"$out"
done
"$python" - "$out" "$batch" <<'PY'
import json, statistics as st, sys
batch = int(sys.argv[2])
R = {}
for line in open(sys.argv[1]):
    r, kind, rest = line.rstrip("\n").split(" ", 2)
    R.setdefault(int(r), {})[kind] = rest
def rng(xs):
    return f"{st.median(xs):.3f} [{min(xs):.3f}, {max(xs):.3f}]"
rows = []
for r in sorted(R):
    d = R[r]
    rates = [float(x) for x in d.get("tessera", "").split()]
    if not rates or "torch" not in d or "gemm" not in d:
        print(f"round {r}: incomplete ({', '.join(d)}); left out"); continue
    tj, gj = json.loads(d["torch"]), json.loads(d["gemm"])
    t_sps = st.median(rates)
    p_sps = st.median(tj["samples"] / s for s in tj["epoch_s"])
    bound = batch / (gj["gemm_step_ms"] * 1e-3)
    q_sps = st.median(json.loads(d["tuned"])["samples"] / s for s in json.loads(d["tuned"])["epoch_s"]) if "tuned" in d else 0
    rows.append((r, t_sps, p_sps, bound, gj["samples_per_s"], q_sps))
    print(f"round {r}: tessera train {t_sps:.0f} samples/s (epochs {', '.join(f'{x:.0f}' for x in rates)}), "
          f"PyTorch {p_sps:.0f} (tuned {q_sps:.0f}), SGEMM bound {bound:.0f}, bench_train {gj['samples_per_s']:.0f}")
if not rows:
    sys.exit("no complete round")
ratio = [t / p for _, t, p, _, _, _ in rows]
tuned = [t / q for _, t, _, _, _, q in rows if q]
frac = [t / b for _, t, _, b, _, _ in rows]
pfrac = [p / b for _, _, p, b, _, _ in rows]
qfrac = [q / b for _, _, _, b, _, q in rows if q]
lib = [t / s for _, t, _, _, s, _ in rows]
print(f"\nMLP 784-256-256-10 relu on Fashion-MNIST, batch {batch}, 1 rank, 1 thread; {len(rows)} rounds, "
      "median [min, max] over rounds")
print(f"  tessera train / PyTorch epoch            {rng(ratio)}   target >= 1.30  {'yes' if st.median(ratio) >= 1.3 else 'NO'}")
if tuned:
    print(f"  tessera train / PyTorch tuned malloc     {rng(tuned)}   target >= 1.30  {'yes' if st.median(tuned) >= 1.3 else 'NO'}")
print(f"  tessera train / SGEMM-bound               {rng(frac)}   target >= 0.90  {'yes' if st.median(frac) >= 0.9 else 'NO'}")
print(f"  PyTorch epoch / SGEMM-bound               {rng(pfrac)}")
if qfrac:
    print(f"  PyTorch tuned epoch / SGEMM-bound         {rng(qfrac)}")
print(f"  tessera train / bench_train (the loop)    {rng(lib)}")
PY
