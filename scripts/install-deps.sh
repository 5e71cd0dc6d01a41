#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Installs the Debian 12 packages tessera needs to build, test and benchmark.
# Idempotent: packages already present are left alone and apt is not touched.
set -euo pipefail
pkgs=(
  build-essential cmake pkg-config
  openmpi-bin libopenmpi-dev
  libhdf5-openmpi-dev hdf5-tools
  libhwloc-dev hwloc
  libopenblas-dev libdnnl-dev
  libinih-dev libcmocka-dev zlib1g-dev clang-format
  libmicrohttpd-dev libjansson-dev libprotobuf-c-dev protobuf-c-compiler
  slurm-wlm slurm-client munge libslurm-dev lmod
  curl python3 python3-numpy python3-h5py python3-sklearn python3-onnx python3-torch
  prometheus chromium
  libsimgrid-dev
  libpapi-dev papi-tools
)
# Optional extras: the benchmarks' peers and the Fashion-MNIST data.
if [ "${TESSERA_DEPS_BENCH:-0}" = 1 ]; then
  pkgs+=(dataset-fashion-mnist wrk parallel python3-dask) # python3-dask: run_apply_bench.sh dask
fi
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#pkgs[@]} packages present"
  exit 0
fi
echo "install-deps: installing ${missing[*]}"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
