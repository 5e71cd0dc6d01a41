#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# tessera's GPU checks on a machine with NVIDIA GPUs, CUDA, NCCL and
# PyTorch but no MPI, HDF5 or hwloc, from build-device and .device-kit
# (scripts/device-kit.sh, run beforehand on a Debian 12 machine; carry both):
#   tests: ctest -L gpu (kernels, model and optimizer against the CPU, NCCL
#          and staged sums on 1 rank and on as many ranks as GPUs, digits on
#          CPU and GPU, GPU resume; mixed precision: gpu.test_gpu_mixed (casts,
#          bf16/fp16 GEMMs) and gpu.test_mixed_gpu (digits in bf16 and fp16
#          against fp32, fp16 loss-scaler skips and resume, bf16 NCCL sums);
#          the layer graph: gpu.test_gpu_layers (every built-in layer against
#          the CPU) and gpu.test_cnn_gpu (a residual CNN on CPU and GPU, 1 and
#          2 ranks, sync_bn, reproducible = world, kill and resume))
#   bench: tests/bench/run_gpu_bench.sh (samples/s against PyTorch on the
#          same GPU, the NCCL sanity runs, the allreduce table, bf16 against
#          fp32 step time beside PyTorch autocast's, the CNN's samples/s
#          against PyTorch's on the GPU)
# Logs: $OUT/ (the device tool's folder) or ./device-out/.
# Usage: scripts/device-run.sh [tests|bench|all]   (default all)
set -uo pipefail
cd "$(dirname "$0")/.."
what=${1:-all}
out=${OUT:-$PWD/device-out}
mkdir -p "$out"
. scripts/device-env.sh || exit 1
{
  echo "== machine"
  nvidia-smi -L 2>&1
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader 2>&1
  echo "python: $TSR_PYTHON; mpirun: $(command -v mpirun); $(mpirun --version 2>&1 | head -1)"
  echo "loader path: $LD_LIBRARY_PATH"
} 2>&1 | tee "$out/machine.txt"
rc=0
if [ "$what" = tests ] || [ "$what" = all ]; then
  echo "== ctest -L gpu"
  (cd build-device && ctest -L gpu --output-on-failure --timeout 300) 2>&1 | tee "$out/ctest-gpu.txt"
  [ "${PIPESTATUS[0]}" -eq 0 ] || rc=1
fi
if [ "$what" = bench ] || [ "$what" = all ]; then
  echo "== tests/bench/run_gpu_bench.sh"
  PYTHON=$TSR_PYTHON tests/bench/run_gpu_bench.sh build-device 2>&1 | tee "$out/gpu-bench.txt"
  [ "${PIPESTATUS[0]}" -eq 0 ] || rc=1
fi
exit $rc
