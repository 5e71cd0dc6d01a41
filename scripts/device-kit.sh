#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Packs what a GPU machine that has CUDA, NCCL and PyTorch but no MPI, HDF5
# or hwloc (the lent device machines; tests/bench/README.md) needs to run tessera's GPU
# tests and benchmarks, so a short lease is spent on the GPU, not on setup:
#   build-device/      tessera built here for Hopper (sm_90 and PTX) with CUDA
#                      and NCCL: the program, the gpu-labelled tests and the
#                      GPU benchmarks; object files and archives removed
#   .device-kit/debs/  the Debian packages of every shared library those
#                      programs, mpirun and Open MPI's plugins load, except
#                      glibc, the C++ runtime and CUDA/NCCL (the GPU machine
#                      has its own)
# Both folders are ignored by git; name them in the device call's carry and
# run scripts/device-run.sh there. Needs what scripts/install-deps.sh
# installs (and apt's package lists).
# Usage: scripts/device-kit.sh [CUDA architectures, default "90"]
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
archs=${1:-90}
b=build-device kit=.device-kit
targets=(tessera_cli gpu_test_gpu_kernels gpu_test_gpu_model gpu_test_gpu_optim gpu_test_gpu_optim_rules gpu_test_gpu_mixed
         gpu_test_gpu_layers gpu_mpi_test_comm_gpu bench_gpu_train bench_allreduce bench_cnn)

rm -f "$b/CMakeCache.txt"
cmake -S . -B "$b" -DCMAKE_BUILD_TYPE=Release -DTESSERA_WITH_CUDA=ON -DTESSERA_WITH_NCCL=ON \
  -DTESSERA_WITH_SLURM=OFF -DTESSERA_SANITIZE_TESTS=OFF -DTESSERA_CUDA_EMU_TESTS=OFF \
  -DCMAKE_CUDA_ARCHITECTURES="$archs" -DTSR_MPIEXEC=/tmp/tessera-device-kit/usr/bin/mpiexec >/dev/null
cmake --build "$b" -j"$(nproc)" --target "${targets[@]}"
# CTest files and test environments hold this checkout's path; device-run.sh
# (scripts/device-env.sh) links it to wherever the copy lands.
echo "$root" >"$b/.source-dir"

# Every shared library the programs and Open MPI's run-time pieces load.
ml=/usr/lib/x86_64-linux-gnu
objs=("$b/tessera" "$b"/libtessera.so* "$b"/tests/gpu_* "$b/tests/bench/bench_gpu_train" "$b/tests/bench/bench_allreduce"
      "$b/tests/bench/bench_cnn"
      /usr/bin/orterun /usr/bin/orted "$ml"/openmpi/lib/openmpi3/*.so "$ml"/pmix2/lib/pmix/*.so "$ml"/hwloc/hwloc_pci.so)
libs=$(for f in "${objs[@]}"; do [ -e "$f" ] && ldd "$f" 2>/dev/null; done | awk '$2 == "=>" && $3 ~ /^\// {print $3}' | sort -u)
owner() { # the package that ships a library, by its path or its real path (usrmerge: /lib = /usr/lib)
  local p q o
  for p in "$1" "$(readlink -f "$1")"; do
    for q in "$p" "${p/#\/usr\/lib\//\/lib\/}" "${p/#\/lib\//\/usr\/lib\/}"; do
      o=$(dpkg -S "$q" 2>/dev/null | head -1 | cut -d: -f1)
      [ -n "$o" ] && { echo "$o"; return 0; }
    done
  done
  case $1 in "$root"/*) ;; *) echo "device-kit.sh: no package ships $1" >&2 ;; esac
}
skip='^(libc6|libgcc-s1|libstdc\+\+6|libnccl.*|cuda-.*|libcublas.*|libcudart.*|libnvidia.*)$'
pkgs=$(for l in $libs; do
         case $l in */cuda*/*|*libcuda*|*libcudart*|*libnccl*|*libcublas*) continue ;; esac
         owner "$l"
       done | sort -u | grep -Ev "$skip" || true)
# Open MPI's and hwloc's run-time files (help texts, default MCA parameters,
# plugins), which no ldd shows. Of hwloc's plugins only the PCI one matters (GPU
# locality); the others fail to load there, quietly, for want of their X11,
# OpenCL and libxml2 libraries.
pkgs=$(printf '%s\n' $pkgs openmpi-bin openmpi-common libopenmpi3 libpmix2 libhwloc-plugins | sort -u)
rm -rf "$kit/debs" && mkdir -p "$kit/debs"
(cd "$kit/debs" && apt-get download $pkgs >/dev/null)

# What travels: programs and CTest files only.
find "$b" \( -name '*.o' -o -name '*.a' -o -name '*.d' -o -name '*.ptx' -o -name '*.fatbin*' -o -name '*.cubin' \) -delete
rm -rf "$b/src/CMakeFiles" "$b/tests/CMakeFiles" "$b/tests/bench/CMakeFiles" "$b/CMakeFiles"/*.dir
echo "device kit: $(du -sh "$b" | cut -f1) in $b, $(ls "$kit/debs" | wc -l) packages ($(du -sh "$kit/debs" | cut -f1)) in $kit/debs:"
ls "$kit/debs" | sed 's/_.*//' | tr '\n' ' '
echo
