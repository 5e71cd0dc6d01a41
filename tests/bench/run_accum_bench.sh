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
# accumulation's adds).
#
# Usage: tests/bench/run_accum_bench.sh [BUILD_DIR] [--rounds R] [--epochs E]
#   defaults: build, 3 rounds, 2 epochs
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
build=build rounds=3 epochs=2
while [ $# -gt 0 ]; do
  case $1 in
    --rounds) rounds=$2; shift 2 ;;
    --epochs) epochs=$2; shift 2 ;;
    -h|--help) sed -n '2,15p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "run_accum_bench.sh: unknown option $1" >&2; exit 2 ;;
    *) build=$1; shift ;;
  esac
done
case $build in /*) ;; *) build=$root/$build ;; esac
bin=$build/tessera bench=$build/tests/bench/bench_train
for f in "$bin" "$bench"; do
  [ -x "$f" ] || { echo "run_accum_bench.sh: $f not found; build it first" >&2; exit 1; }
done
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
work=$(mktemp -d "${TMPDIR:-/tmp}/tessera-accumbench.XXXXXX")
trap 'rm -rf "$work"' EXIT
# shellcheck source=fashion_h5.sh
. "$here/fashion_h5.sh"
data=${FASHION_H5:-$work/fashion.h5}
[ -f "$data" ] || fashion_h5 "$bin" "$data" || exit 1
cd "$work"
declare -A extra=([b128]="--set train.batch_size=128" [a4x32]="--set train.batch_size=32 --set train.accumulate_steps=4"
                  [b32]="--set train.batch_size=32")
out=results.txt
: >"$out"
for ((r = 1; r <= rounds; r++)); do
  for v in b128 a4x32 b32; do
    echo "round $r/$rounds: tessera train $v..." >&2
    # shellcheck disable=SC2086
    rate=$(mpiexec --bind-to none -n 1 "$bin" train "$root/tests/bench/fashion.ini" --set "data.path=$data" \
      --set "train.output=$work/model.h5" --set "checkpoint.dir=$work/ckpt" --set "train.epochs=$epochs" \
      --set runtime.blas_threads=1 --set runtime.progress=lines --set train.register=false ${extra[$v]} 2>&1 |
      sed -nE 's/.*epoch [0-9]+\/[0-9]+ train loss .* ([0-9.]+) samples\/s$/\1/p' | sort -n |
      awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}')
    echo "$r $v $rate" >>"$out"
  done
  for b in 32 128; do
    echo "round $r/$rounds: bench_train --batch $b..." >&2
    echo "$r gemm$b $("$bench" --seconds 1 --reps 3 --batch "$b" --json)" >>"$out"
  done
done
/usr/bin/python3 - "$out" <<'PY'
import json, statistics as st, sys
R = {}
for line in open(sys.argv[1]):
    r, k, rest = line.rstrip("\n").split(" ", 2)
    R.setdefault(int(r), {})[k] = rest
def rng(xs):
    return f"{st.median(xs):.3f} [{min(xs):.3f}, {max(xs):.3f}]"
acc, small, gemm, step, lib32, lib128 = [], [], [], [], [], []
for r in sorted(R):
    d = R[r]
    try:
        b128, a4, b32 = float(d["b128"]), float(d["a4x32"]), float(d["b32"])
        g32, g128 = json.loads(d["gemm32"]), json.loads(d["gemm128"])
    except (KeyError, ValueError):
        print(f"round {r}: incomplete; left out"); continue
    acc.append(a4 / b128); small.append(b32 / b128)
    gemm.append(g128["gemm_step_ms"] / (4 * g32["gemm_step_ms"]))
    step.append(g128["step_ms"] / (4 * g32["step_ms"]))
    # outside the GEMMs, per 128 samples: four 32-row steps against one 128-row step
    lib32.append(4 * (g32["step_ms"] - g32["gemm_step_ms"]) * 1e3); lib128.append((g128["step_ms"] - g128["gemm_step_ms"]) * 1e3)
    print(f"round {r}: tessera train samples/s: batch 128 {b128:.0f}, 4 x 32 accumulated {a4:.0f}, batch 32 {b32:.0f}; "
          f"bench_train step {g32['step_ms']:.3f} ms (GEMMs {g32['gemm_step_ms']:.3f}) at 32, "
          f"{g128['step_ms']:.3f} ms (GEMMs {g128['gemm_step_ms']:.3f}) at 128")
if not acc:
    sys.exit("no complete round")
print(f"\n{len(acc)} rounds, median [min, max]")
print(f"  tessera train, 4 x 32 accumulated / batch 128     {rng(acc)}   target >= 0.98")
print(f"  tessera train, batch 32 / batch 128               {rng(small)}")
print(f"  the BLAS alone: 128-row GEMMs / 4 x 32-row GEMMs  {rng(gemm)}   (the most accumulation can reach)")
print(f"  bench_train step: 128 rows / 4 x 32 rows          {rng(step)}")
print(f"  outside the GEMMs per 128 samples: 4 x 32 rows {st.median(lib32):.0f} us, 128 rows {st.median(lib128):.0f} us")
PY
