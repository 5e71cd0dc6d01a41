# SPDX-License-Identifier: BSD-3-Clause
# Sourced (bash) on a GPU machine without MPI, HDF5 or hwloc, from the
# checkout's root, after scripts/device-kit.sh made .device-kit and
# build-device here and they travelled: unpacks the kit's Debian packages
# into /tmp/tessera-device-kit once (outside the checkout, so a local try
# does not make the next carry too big), and points the loader, Open MPI, hwloc and
# the tests at it and at the machine's own CUDA runtime, cuBLAS and NCCL.
# Returns non-zero (and says why) when something is missing.
tsr_dev_root=$PWD
tsr_kit=/tmp/tessera-device-kit # build-device's tests call $tsr_kit/usr/bin/mpiexec
if [ ! -d "$tsr_dev_root/build-device" ] || ! ls "$tsr_dev_root"/.device-kit/debs/*.deb >/dev/null 2>&1; then
  echo "device-env.sh: no build-device or .device-kit/debs in $tsr_dev_root (run scripts/device-kit.sh and carry both)" >&2
  return 1
fi
if [ ! -e "$tsr_kit/.unpacked" ]; then
  mkdir -p "$tsr_kit"
  for d in "$tsr_dev_root"/.device-kit/debs/*.deb; do
    if command -v dpkg >/dev/null; then
      dpkg -x "$d" "$tsr_kit"
    else # binutils' ar: Debian 12's packages hold data.tar.xz
      ar p "$d" data.tar.xz | tar -xJ -C "$tsr_kit"
    fi || { echo "device-env.sh: cannot unpack $d" >&2; return 1; }
  done
  # Unpacking sets up no alternatives: the names the tests and Open MPI's
  # PSM plugin look for.
  ln -sf orterun "$tsr_kit/usr/bin/mpirun"
  ln -sf orterun "$tsr_kit/usr/bin/mpiexec"
  for l in "$tsr_kit"/usr/lib/libpsm1/libpsm_infinipath.so.1.*; do
    [ -e "$l" ] && ln -sf "$(basename "$l")" "$tsr_kit/usr/lib/libpsm1/libpsm_infinipath.so.1"
  done
  touch "$tsr_kit/.unpacked"
fi
tsr_ml=$tsr_kit/usr/lib/x86_64-linux-gnu
# The machine's CUDA runtime, cuBLAS and NCCL: the loader's, the toolkit's
# or PyTorch's wheels'.
tsr_cuda_dirs=
for n in libcudart.so.13 libcublas.so.13 libnccl.so.2; do
  p=$(ldconfig -p 2>/dev/null | awk -v n="$n" '$1 == n {print $NF; exit}')
  [ -n "$p" ] || p=$(find /usr/local/cuda* /usr/lib /opt -name "$n" 2>/dev/null | head -1)
  if [ -z "$p" ]; then
    echo "device-env.sh: no $n on this machine" >&2
    return 1
  fi
  case ":$tsr_cuda_dirs:" in *":$(dirname "$p"):"*) ;; *) tsr_cuda_dirs=$tsr_cuda_dirs:$(dirname "$p") ;; esac
done
# Debian 12's packages put libraries in both /usr/lib and /lib.
export LD_LIBRARY_PATH=$tsr_ml:$tsr_kit/lib/x86_64-linux-gnu:$tsr_ml/openmpi/lib:$tsr_ml/openblas-pthread:$tsr_kit/usr/lib/libpsm1$tsr_cuda_dirs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
# Open MPI and PMIx find their plugins and help files under these prefixes.
export OPAL_PREFIX=$tsr_kit/usr PMIX_PREFIX=$tsr_ml/pmix2 PMIX_MCA_mca_base_component_path=$tsr_ml/pmix2/lib/pmix
export PATH=$tsr_kit/usr/bin:$PATH
export HWLOC_PLUGINS_PATH=$tsr_ml/hwloc
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# The tests' Python: the machine's, which has h5py, numpy and PyTorch.
TSR_PYTHON=$(command -v python3)
export TSR_PYTHON
# build-device's CTest files hold the path of the checkout it was built in.
tsr_src=$(cat "$tsr_dev_root/build-device/.source-dir")
if [ "$tsr_src" != "$tsr_dev_root" ] && [ ! -e "$tsr_src" ]; then
  mkdir -p "$(dirname "$tsr_src")" && ln -s "$tsr_dev_root" "$tsr_src"
fi
