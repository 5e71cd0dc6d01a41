# SPDX-License-Identifier: BSD-3-Clause
# Sourced by the bench scripts: fashion_h5 TESSERA OUT converts the IDX
# files of Debian's dataset-fashion-mnist (train and test splits) to the
# HDF5 dataset OUT. Returns 1, with a line saying so, when they are missing.
fashion_h5() {
  local tessera=$1 out=$2 idx_dir=
  if command -v dpkg >/dev/null && dpkg -L dataset-fashion-mnist >/dev/null 2>&1; then
    idx_dir=$(dirname "$(dpkg -L dataset-fashion-mnist | grep 'train-images-idx3-ubyte.gz$' | head -1)")
  fi
  [ -n "$idx_dir" ] && [ -d "$idx_dir" ] || idx_dir=/usr/share/datasets/fashion-mnist
  if [ ! -f "$idx_dir/train-images-idx3-ubyte.gz" ]; then
    echo "$(basename "$0"): Fashion-MNIST IDX files not found in $idx_dir (apt-get install dataset-fashion-mnist)" >&2
    return 1
  fi
  echo "== converting $idx_dir to HDF5" >&2
  "$tessera" data convert \
    --idx-images "$idx_dir/train-images-idx3-ubyte.gz" --idx-labels "$idx_dir/train-labels-idx1-ubyte.gz" \
    --idx-test-images "$idx_dir/t10k-images-idx3-ubyte.gz" --idx-test-labels "$idx_dir/t10k-labels-idx1-ubyte.gz" \
    -o "$out" >&2
}
