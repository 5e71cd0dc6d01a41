#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Issue 15's accumulation figure, split into the BLAS's share and
# tessera's: `tessera train tests/bench/fashion.ini` on 1 rank, one BLAS
# thread, at batch 128, at 4 accumulated micro-batches of 32 (the same
# optimizer steps) and at plain batch 32, run alternately in each round
# (a run's rate: the median of its epochs); then bench_train at batch 32
# and 128, which times a step and the step's GEMMs alone at the same
# shapes in the same process. The GEMM ratio (128-row GEMMs / four 32-row
# GEMMs) is what the BLAS alone allows the accumulated run; the rest of
# the gap is tessera's (per-micro-batch work outside the GEMMs, and the
# accumulation's adds). PyTorch (torch_epoch.py --accum 4) runs the same
# pair, whose ratio is the anchor's own cost of accumulating.
#
# --micro M: micro-batches of M rows (4 x M against batch 4M; default 32).
# The 32-row GEMMs re-read every weight from cache four times per step
# where the 128-row ones read it once, so the cap rises with M.
#
# Usage: tests/bench/run_accum_bench.sh [BUILD_DIR] [--rounds R] [--epochs E] [--micro M]
#   defaults: build, 3 rounds, 2 epochs, micro-batch 32
# Environment: PYTHON (default /usr/bin/python3, with python3-torch and python3-h5py).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
build=build rounds=3 epochs=2 micro=32
while [ $# -gt 0 ]; do
  case $1 in
    --rounds) rounds=$2; shift 2 ;;
    --epochs) epochs=$2; shift 2 ;;
    --micro) micro=$2; shift 2 ;;
    -h|--help) sed -n '2,21p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "run_accum_bench.sh: unknown option $1" >&2; exit 2 ;;
    *) build=$1; shift ;;
  esac
done
case $micro in '' | *[!0-9]* | 0) echo "run_accum_bench.sh: --micro $micro: expected a positive whole number of rows" >&2; exit 2 ;; esac
case $build in /*) ;; *) build=$root/$build ;; esac
bin=$build/tessera bench=$build/tests/bench/bench_train
for f in "$bin" "$bench"; do
  [ -x "$f" ] || { echo "run_accum_bench.sh: $f not found; build it first" >&2; exit 1; }
done
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
python=${PYTHON:-/usr/bin/python3}
work=$(mktemp -d "${TMPDIR:-/tmp}/tessera-accumbench.XXXXXX")
trap 'rm -rf "$work"' EXIT
# shellcheck source=fashion_h5.sh
. "$here/fashion_h5.sh"
data=${FASHION_H5:-$work/fashion.h5}
[ -f "$data" ] || fashion_h5 "$bin" "$data" || exit 1
cd "$work"
big=$((4 * micro))
declare -A extra=([big]="--set train.batch_size=$big" [acc]="--set train.batch_size=$micro --set train.accumulate_steps=4"
                  [micro]="--set train.batch_size=$micro")
out=results.txt
: >"$out"
for ((r = 1; r <= rounds; r++)); do
  for v in big acc micro; do
    echo "round $r/$rounds: tessera train $v..." >&2
    # shellcheck disable=SC2086
    rate=$(mpiexec --bind-to none -n 1 "$bin" train "$root/tests/bench/fashion.ini" --set "data.path=$data" \
      --set "train.output=$work/model.h5" --set "checkpoint.dir=$work/ckpt" --set "train.epochs=$epochs" \
      --set runtime.blas_threads=1 --set runtime.progress=lines --set train.register=false ${extra[$v]} 2>&1 |
      sed -nE 's/.*epoch [0-9]+\/[0-9]+ train loss .* ([0-9.]+) samples\/s$/\1/p' | sort -n |
      awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}')
    echo "$r $v $rate" >>"$out"
  done
  # PyTorch's own accumulation against its own big batch: the peer's cost
  # at the same shapes (malloc told to keep its memory, as tuned users do).
  for v in big acc; do
    echo "round $r/$rounds: pytorch $v..." >&2
    if [ "$v" = big ]; then ta=(--batch "$big"); else ta=(--batch "$micro" --accum 4); fi
    echo "$r torch_$v $(env MALLOC_TRIM_THRESHOLD_=68719476736 MALLOC_TOP_PAD_=1073741824 \
      "$python" "$here/torch_epoch.py" --data "$data" --epochs "$epochs" "${ta[@]}")" >>"$out"
  done
  for b in micro big; do
    echo "round $r/$rounds: bench_train --batch ${!b}..." >&2
    echo "$r gemm_$b $("$bench" --seconds 1 --reps 3 --batch "${!b}" --json)" >>"$out"
  done
done
"$python" - "$out" "$micro" <<'PY'
import json, statistics as st, sys
m = int(sys.argv[2])
R = {}
for line in open(sys.argv[1]):
    r, k, rest = line.rstrip("\n").split(" ", 2)
    R.setdefault(int(r), {})[k] = rest
def rng(xs):
    return f"{st.median(xs):.3f} [{min(xs):.3f}, {max(xs):.3f}]"
acc, small, gemm, step, lib32, lib128, tacc = [], [], [], [], [], [], []
def trate(j):
    j = json.loads(j)
    return st.median(j["samples"] / t for t in j["epoch_s"])
for r in sorted(R):
    d = R[r]
    try:
        b128, a4, b32 = float(d["big"]), float(d["acc"]), float(d["micro"])
        g32, g128 = json.loads(d["gemm_micro"]), json.loads(d["gemm_big"])
    except (KeyError, ValueError):
        print(f"round {r}: incomplete; left out"); continue
    acc.append(a4 / b128); small.append(b32 / b128)
    if "torch_big" in d and "torch_acc" in d:
        tacc.append(trate(d["torch_acc"]) / trate(d["torch_big"]))
    gemm.append(g128["gemm_step_ms"] / (4 * g32["gemm_step_ms"]))
    step.append(g128["step_ms"] / (4 * g32["step_ms"]))
    # outside the GEMMs, per 4m samples: four m-row steps against one 4m-row step
    lib32.append(4 * (g32["step_ms"] - g32["gemm_step_ms"]) * 1e3); lib128.append((g128["step_ms"] - g128["gemm_step_ms"]) * 1e3)
    print(f"round {r}: tessera train samples/s: batch {4*m} {b128:.0f}, 4 x {m} accumulated {a4:.0f}, batch {m} {b32:.0f}; "
          f"bench_train step {g32['step_ms']:.3f} ms (GEMMs {g32['gemm_step_ms']:.3f}) at {m}, "
          f"{g128['step_ms']:.3f} ms (GEMMs {g128['gemm_step_ms']:.3f}) at {4*m}")
if not acc:
    sys.exit("no complete round")
print(f"\n{len(acc)} rounds, median [min, max]")
print(f"  tessera train, 4 x {m} accumulated / batch {4*m}     {rng(acc)}   target >= 0.98")
print(f"  tessera train, batch {m} / batch {4*m}               {rng(small)}")
if tacc:
    print(f"  PyTorch, 4 x {m} accumulated / batch {4*m}           {rng(tacc)}   (the peer's own cost)")
print(f"  the BLAS alone: {4*m}-row GEMMs / 4 x {m}-row GEMMs  {rng(gemm)}   (the most accumulation can reach)")
print(f"  bench_train step: {4*m} rows / 4 x {m} rows          {rng(step)}")
print(f"  outside the GEMMs per {4*m} samples: 4 x {m} rows {st.median(lib32):.0f} us, {4*m} rows {st.median(lib128):.0f} us")
PY
