#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Training-step throughput: tessera (bench_train) against PyTorch (torch_mlp.py)
# on the same MLP, batch, optimizer, data shape and BLAS thread count, run
# alternately (tessera, torch, tessera, torch, ...) so load drifts hit both.
# Builds nothing: build first (cmake ... && make -C build bench_train).
#
# Usage: tests/bench/run_train_bench.sh [BUILD_DIR] [--seconds S] [--reps N] [--rounds R]
#   BUILD_DIR  the build tree (default: build, relative to the repository root)
#   --seconds  seconds per timed run (default 3)    --reps    runs per program (default 5)
#   --rounds   tessera/torch alternations (default 3)
# Environment: PYTHON (default /usr/bin/python3, which has python3-torch).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
build=build
seconds=3
reps=5
rounds=3
while [ $# -gt 0 ]; do
  case $1 in
    --seconds) seconds=$2; shift 2 ;;
    --reps) reps=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    -h|--help) sed -n '2,11p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "run_train_bench.sh: unknown option $1" >&2; exit 2 ;;
    *) build=$1; shift ;;
  esac
done
case $build in /*) ;; *) build=$root/$build ;; esac
bench=$build/tests/bench/bench_train
python=${PYTHON:-/usr/bin/python3}
[ -x "$bench" ] || { echo "run_train_bench.sh: $bench not found; build it: make -C $build bench_train" >&2; exit 1; }
"$python" -c 'import torch' 2>/dev/null || { echo "run_train_bench.sh: $python has no torch (install python3-torch)" >&2; exit 1; }

# One BLAS/OpenMP thread for both; OPENBLAS_CORETYPE, if set, is left as is
# so both run the same OpenBLAS kernels.
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1

tsr_json=() torch_json=()
for ((r = 1; r <= rounds; r++)); do
  echo "round $r/$rounds: tessera..." >&2
  tsr_json+=("$("$bench" --seconds "$seconds" --reps "$reps" --json)")
  echo "round $r/$rounds: pytorch..." >&2
  torch_json+=("$("$python" "$here/torch_mlp.py" --seconds "$seconds" --reps "$reps" --json)")
done

"$python" - "$rounds" "${tsr_json[@]}" "${torch_json[@]}" <<'EOF'
import json, statistics, sys
n = int(sys.argv[1])
tsr = [json.loads(s) for s in sys.argv[2:2 + n]]
tch = [json.loads(s) for s in sys.argv[2 + n:2 + 2 * n]]
med = lambda xs: statistics.median(xs)
t_sps = med([j["samples_per_s"] for j in tsr])
p_sps = med([j["samples_per_s"] for j in tch])
ratio = t_sps / p_sps
frac = med([j["frac_sgemm_bound"] for j in tsr])
pfrac = med([j["frac_sgemm_bound"] for j in tch])
norm = med([a["frac_sgemm_bound"] / b["frac_sgemm_bound"] for a, b in zip(tsr, tch)])
peak = med([j["frac_square_peak"] for j in tsr])
t0 = tsr[0]
print(f"MLP 784-256-256-10 relu, batch {t0['batch']}, SGD momentum 0.9, 1 thread; "
      f"{n} rounds x {t0['reps']} runs x {t0['seconds']:g} s, medians")
print("  per round: tessera " + ", ".join(f"{j['samples_per_s']:.0f}" for j in tsr)
      + " | pytorch " + ", ".join(f"{j['samples_per_s']:.0f}" for j in tch) + " samples/s | ratio "
      + ", ".join(f"{a['samples_per_s'] / b['samples_per_s']:.2f}" for a, b in zip(tsr, tch)))
print(f"  model FLOPs/sample {t0['flops_per_sample']:.0f} nominal, {t0['gemm_flops_per_sample']:.0f} in GEMMs; "
      f"tessera {med([j['gflops'] for j in tsr]):.1f} GFLOP/s nominal; "
      f"SGEMM at step shapes {med([j['gemm_gflops'] for j in tsr]):.1f}, 1024^3 {med([j['square_gflops'] for j in tsr]):.1f} GFLOP/s")
print()
print(f"  {'metric':<38}{'value':>12}{'target':>10}  ok")
rows = [("tessera samples/s", f"{t_sps:.0f}", "", ""),
        (f"PyTorch {tch[0]['torch']} samples/s", f"{p_sps:.0f}", "", ""),
        ("ratio tessera / PyTorch", f"{ratio:.2f}", ">= 1.30", "yes" if ratio >= 1.3 else "NO"),
        ("tessera / SGEMM-bound (step shapes)", f"{frac:.3f}", ">= 0.85", "yes" if frac >= 0.85 else "NO"),
        ("PyTorch / its SGEMM-bound", f"{pfrac:.3f}", "", ""),
        ("ratio at equal SGEMM speed", f"{norm:.2f}", "", ""),
        ("tessera / 1024^3 SGEMM peak", f"{peak:.3f}", "", "")]
for name, v, tgt, ok in rows:
    print(f"  {name:<38}{v:>12}{tgt:>10}  {ok}")
print("  (ratio at equal SGEMM speed: tessera's fraction of its SGEMM bound over PyTorch's, each measured\n"
      "   in-process, per round; it discounts how fast OpenBLAS happened to run in each process)")
EOF
