#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# GPU benchmarks (issue 6), for a machine with an NVIDIA GPU:
#   (a) training-step throughput of the 784-256-256-10 MLP at batch 1024 on
#       one GPU: bench_gpu_train against torch_mlp.py --device cuda on the
#       same GPU, alternating (tessera, torch, ...) ROUNDS times; prints the
#       ratio of medians (target >= 1.0);
#   (b) the NCCL sanity run: mpi_test_comm_gpu on 1 rank (one GPU), then on as
#       many ranks as GPUs, and bench_allreduce --backend nccl where MPI is
#       available;
#   (c) mixed precision (train.precision): the same step in bf16 against
#       fp32, tessera (bench_gpu_train --precision) and PyTorch autocast
#       (torch_mlp.py --amp), alternating ROUNDS times; prints each one's
#       bf16/fp32 step-time ratio and tessera bf16 against PyTorch bf16;
#   (d) the layer graph on the GPU: the Fashion-MNIST CNN of issue 16
#       (conv(32,3,pad=1) relu maxpool(2) conv(64,3,pad=1) relu maxpool(2)
#       flatten dense(128) relu dense(10) over 1x28x28, batch 128, SGD
#       momentum): bench_cnn --gpu against torch_cnn.py --device cuda,
#       alternating ROUNDS times; prints the ratio of medians (samples/s).
# Without a GPU every part says SKIP and the script exits 0.
#
# Usage: tests/bench/run_gpu_bench.sh [BUILD_DIR] [--seconds S] [--reps N] [--rounds R] [--batch B]
# Environment: PYTHON (default: /usr/bin/python3 if it has torch, else python3).
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
build=build seconds=3 reps=5 rounds=3 batch=1024
while [ $# -gt 0 ]; do
  case $1 in
    --seconds) seconds=$2; shift 2 ;;
    --reps) reps=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --batch) batch=$2; shift 2 ;;
    -h|--help) sed -n '2,24p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "run_gpu_bench.sh: unknown option $1" >&2; exit 2 ;;
    *) build=$1; shift ;;
  esac
done
case $build in /*) ;; *) build=$root/$build ;; esac
bench=$build/tests/bench/bench_gpu_train
[ -x "$bench" ] || { echo "run_gpu_bench.sh: $bench not found; build first" >&2; exit 1; }
py=${PYTHON:-}
if [ -z "$py" ]; then
  if /usr/bin/python3 -c 'import torch' 2>/dev/null; then py=/usr/bin/python3; else py=python3; fi
fi

# versus WHAT TARGET: runs the commands in the arrays tcmd (tessera) and
# pcmd (PyTorch), alternating, ROUNDS times (each prints JSON with
# samples_per_s; exit 77: no GPU), then the ratio of medians and each
# round's. t_all keeps tessera's rates (empty when skipped).
versus() {
  local what=$1 target=$2 r out rc
  t_all=() p_all=()
  for r in $(seq 1 "$rounds"); do
    out=$("${tcmd[@]}"); rc=$?
    if [ $rc -eq 77 ]; then echo "SKIP: no CUDA device for ${tcmd[0]##*/}"; t_all=(); return; fi
    [ $rc -eq 0 ] || { echo "${tcmd[0]##*/} failed ($rc): $out"; exit 1; }
    echo "tessera: $out"
    t_all+=("$(sed -n 's/.*"samples_per_s":\([0-9.]*\).*/\1/p' <<<"$out")")
    out=$(OMP_NUM_THREADS=1 "${pcmd[@]}"); rc=$?
    if [ $rc -eq 77 ]; then echo "SKIP: PyTorch sees no CUDA device"; return; fi
    [ $rc -eq 0 ] || { echo "${pcmd[1]##*/} failed ($rc): $out"; exit 1; }
    echo "torch:   $out"
    p_all+=("$(sed -n 's/.*"samples_per_s": \([0-9.]*\).*/\1/p' <<<"$out")")
  done
  [ ${#p_all[@]} -eq ${#t_all[@]} ] || return
  python3 - "$what" "$target" "${t_all[*]}" "${p_all[*]}" <<'PY'
import statistics, sys
what, target = sys.argv[1], sys.argv[2]
t = [float(v) for v in sys.argv[3].split()]
p = [float(v) for v in sys.argv[4].split()]
print(f"{what}: tessera {statistics.median(t):.0f} samples/s, PyTorch {statistics.median(p):.0f} samples/s: "
      f"ratio {statistics.median(t) / statistics.median(p):.2f}{target}; per round: "
      + ", ".join(f"{a / b:.2f}" for a, b in zip(t, p)))
PY
}

echo "== (a) MLP 784-256-256-10, batch $batch, one GPU: tessera vs PyTorch =="
tcmd=("$bench" --seconds "$seconds" --reps "$reps" --batch "$batch" --json)
pcmd=("$py" "$here/torch_mlp.py" --device cuda --seconds "$seconds" --reps "$reps" --batch "$batch" --json)
versus "MLP" " (target >= 1.0)"

# What one host wait per step (reading the loss back) costs, for the record.
if [ ${#t_all[@]} -gt 0 ]; then
  out=$("$bench" --seconds "$seconds" --reps "$reps" --batch "$batch" --json --loss-every-step) \
    && echo "tessera, loss read back every step: $out"
fi

echo "== (b) NCCL =="
ngpu=$(nvidia-smi -L 2>/dev/null | grep -c GPU || true)
mpirun=$(command -v mpirun || command -v mpiexec || true)
test=$build/tests/gpu_mpi_test_comm_gpu
[ -x "$test" ] || test=$(find "$build/tests" -name gpu_mpi_test_comm_gpu -type f | head -1)
if [ -z "$mpirun" ]; then
  echo "SKIP: no mpirun here"
elif [ "${ngpu:-0}" -lt 1 ]; then
  echo "SKIP: no GPU (nvidia-smi -L lists none)"
else
  flags=(--oversubscribe --bind-to none)
  [ "$(id -u)" -eq 0 ] && flags+=(--allow-run-as-root)
  for np in 1 "$ngpu"; do
    "$mpirun" "${flags[@]}" -n "$np" "$test" && echo "mpi_test_comm_gpu on $np rank(s): ok" || echo "mpi_test_comm_gpu on $np rank(s): FAILED"
  done
  "$mpirun" "${flags[@]}" -n "$ngpu" "$build/tests/bench/bench_allreduce" --gpu --max-bytes 256M 2>&1 | tail -30
fi

echo "== (c) mixed precision: bf16 against fp32, tessera and PyTorch autocast, batch $batch =="
declare -A ms=()
for r in $(seq 1 "$rounds"); do
  for p in fp32 bf16; do
    out=$("$bench" --seconds "$seconds" --reps "$reps" --batch "$batch" --precision $p --json); rc=$?
    if [ $rc -eq 77 ]; then echo "SKIP: no CUDA device for bench_gpu_train"; break 2; fi
    [ $rc -eq 0 ] || { echo "bench_gpu_train --precision $p failed ($rc): $out"; exit 1; }
    echo "tessera $p: $out"
    ms[t$p]+="$(sed -n 's/.*"step_ms":\([0-9.]*\).*/\1/p' <<<"$out") "
    out=$(OMP_NUM_THREADS=1 "$py" "$here/torch_mlp.py" --device cuda --amp $p --seconds "$seconds" --reps "$reps" \
          --batch "$batch" --json); rc=$?
    if [ $rc -eq 77 ]; then echo "SKIP: PyTorch sees no CUDA device"; break 2; fi
    [ $rc -eq 0 ] || { echo "torch_mlp.py --amp $p failed ($rc): $out"; exit 1; }
    echo "torch $p:   $out"
    ms[p$p]+="$(sed -n 's/.*"step_ms": \([0-9.]*\).*/\1/p' <<<"$out") "
  done
done
if [ -n "${ms[pbf16]:-}" ]; then
  python3 - "${ms[tfp32]}" "${ms[tbf16]}" "${ms[pfp32]}" "${ms[pbf16]}" <<'PY'
import statistics, sys
t32, t16, p32, p16 = ([float(v) for v in a.split()] for a in sys.argv[1:5])
m = statistics.median
print(f"step time bf16/fp32: tessera {m(t16) / m(t32):.2f}, PyTorch autocast {m(p16) / m(p32):.2f} (below 1: bf16 faster); "
      f"per round tessera " + ", ".join(f"{a / b:.2f}" for a, b in zip(t16, t32))
      + "; PyTorch " + ", ".join(f"{a / b:.2f}" for a, b in zip(p16, p32)))
print(f"bf16 step: tessera {m(t16):.3f} ms, PyTorch {m(p16):.3f} ms: PyTorch/tessera {m(p16) / m(t16):.2f} (target >= 1.0)")
PY
fi

echo "== (d) CNN (layer graph), batch 128, one GPU: tessera vs PyTorch =="
tcmd=("$build/tests/bench/bench_cnn" --gpu --seconds "$seconds" --reps "$reps" --batch 128 --json)
pcmd=("$py" "$here/torch_cnn.py" --device cuda --seconds "$seconds" --reps "$reps" --batch 128 --json)
versus "CNN on the GPU" ""
