#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Every bad input gives one clear line naming the file or key, the documented
# exit code from every rank, no hang, and no output file.
. "$(dirname "$0")/lib.sh"
$PY - <<'PY'
import h5py, numpy as np
rng = np.random.default_rng(0)
X = rng.random((40, 8), dtype=np.float32); y = (np.arange(40) % 3).astype(np.int32)
def mk(name, **d):
    with h5py.File(name, "w") as f:
        for k, v in d.items(): f[k] = v
mk("good.h5", X=X, y=y)
Xn = X.copy(); Xn[17, 3] = np.nan; mk("nan.h5", X=Xn, y=y)
Xi = X.copy(); Xi[5, 0] = np.inf; mk("inf.h5", X=Xi, y=y)
mk("rank.h5", X=X.ravel(), y=y)
mk("rows.h5", X=X, y=y[:30])
yb = y.copy(); yb[9] = -2; mk("label.h5", X=X, y=yb)
mk("noy.h5", X=X)
mk("dtype.h5", X=X.astype(np.float64), y=y)
mk("tiny.h5", X=X[:3], y=y[:3])
PY
echo "this is not HDF5" > text.h5
cat > base.ini <<'INI'
[data]
path = good.h5
[model]
hidden = 16
[train]
epochs = 1
batch_size = 4
output = out.h5
INI

# expect NAME CODE PATTERN NP ARGS...: exit code CODE, stderr matching PATTERN, no out.h5
expect() {
  local name=$1 code=$2 pat=$3 np=$4; shift 4
  rm -f out.h5
  timeout 60 "$TSR_MPIEXEC" --oversubscribe --bind-to none -n "$np" "$TSR_BIN" "$@" >o.txt 2>e.txt
  local rc=$?
  local lines
  lines=$(grep -c '^tessera.*error:' e.txt)
  if [ $rc -eq 124 ]; then bad "$name: hung"; return; fi
  if [ $rc -ne "$code" ]; then bad "$name: exit $rc, expected $code"; cat e.txt; return; fi
  if ! grep -q -- "$pat" e.txt; then bad "$name: stderr lacks '$pat'"; cat e.txt; return; fi
  if [ "$lines" -ne 1 ]; then bad "$name: $lines error lines, expected 1"; cat e.txt; return; fi
  if [ -e out.h5 ] || ls -a | grep -q '\.tmp\.'; then bad "$name: output file left behind"; return; fi
  ok "$name ($(grep -m1 'error:' e.txt))"
}

mpi 2 train base.ini --set runtime.progress=none >o.txt 2>&1 && [ -f out.h5 ] && ok "good data trains" \
  || { bad "good data does not train"; cat o.txt; }
rm -f out.h5
expect "missing dataset"    3 "missing.h5"       2 train base.ini --set data.path=missing.h5
expect "not HDF5"           3 "text.h5"          2 train base.ini --set data.path=text.h5
expect "NaN in X"           3 "nan.h5.*row 17"   2 train base.ini --set data.path=nan.h5
expect "Inf in X"           3 "inf.h5.*row 5"    2 train base.ini --set data.path=inf.h5
expect "wrong rank"         3 "rank.h5"          2 train base.ini --set data.path=rank.h5
expect "row mismatch"       3 "rows.h5"          2 train base.ini --set data.path=rows.h5
expect "label out of range" 3 "label.h5.*row 9"  2 train base.ini --set data.path=label.h5
expect "label >= outputs"   3 "good.h5"          2 train base.ini --set model.outputs=2
expect "missing /y"         3 "noy.h5"           2 train base.ini --set data.path=noy.h5
expect "float64 X"          3 "dtype.h5"         2 train base.ini --set data.path=dtype.h5
expect "unknown key"        2 "train.epochs"     2 train base.ini --set train.epoch=3
expect "malformed value"    2 "batch_size"       2 train base.ini --set train.batch_size=big
expect "unknown section"    2 "optimizer"        2 train base.ini --set optimizer.lr=1
expect "missing config"     2 "nope.ini"         2 train nope.ini
expect "batch > shard"      2 "batch_size"       2 train base.ini --set train.batch_size=30
expect "ranks > samples"    2 "batch_size"       4 train base.ini --set data.path=tiny.h5 --set train.batch_size=1
printf '[train]\nepochs = 1\nbatchsize = 4\n' > typo.ini
expect "typo in file"       2 "typo.ini:3.*train.batch_size" 2 train typo.ini
printf '[data]\npath = good.h5\n[train]\noutput = /nonexistent-dir/out.h5\nepochs = 1\nbatch_size = 4\n' > unwritable.ini
expect "unwritable output"  4 "nonexistent-dir"  2 train unwritable.ini --set runtime.progress=none
# No GPU here (or a build without CUDA): cuda is refused, auto falls back to the CPU.
if [ "$(nvidia-smi -L 2>/dev/null | grep -c GPU)" -lt 2 ]; then
  expect "cuda without GPUs" 2 "device = cuda" 2 train base.ini --set runtime.device=cuda
  mpi 2 train base.ini --set runtime.device=auto --set runtime.progress=none >o.txt 2>&1 && [ -f out.h5 ] &&
    grep -q "training on the CPU" o.txt && ok "runtime.device = auto without GPUs trains on the CPU" ||
    { bad "runtime.device = auto without GPUs"; cat o.txt; }
  rm -f out.h5
fi
finish
