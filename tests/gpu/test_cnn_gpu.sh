#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# A residual CNN (conv, batch norm, relu, a residual block, maxpool,
# dropout, global average pooling, dense) trained by the program for 20
# steps on the CPU and on a GPU from the same seed: every tensor of the
# model files (weights and running statistics) agrees to float tolerance,
# on 1 rank and on 2 ranks through the nccl back-end (2+ GPUs, or the
# emulator's NCCL over MPI), with model.sync_bn and train.reproducible =
# world too; a GPU run killed after
# step 13 and resumed from its checkpoint ends byte-identical to an
# uninterrupted one. Exits 77 (skipped) without a CUDA device; with
# TSR_CUDAEMU=1 the same on the CPU CUDA emulator.
. "$TSR_SRC/tests/e2e/lib.sh"
if [ -n "${TSR_CUDAEMU:-}" ]; then
  ngpu=${TSR_CUDAEMU_DEVICES:-1}
else
  ngpu=$(nvidia-smi -L 2>/dev/null | grep -c GPU)
fi
if [ "${ngpu:-0}" -lt 1 ]; then
  echo "SKIP: no GPU (nvidia-smi -L lists none)"
  exit 77
fi
mkdir -p data && cp "$TSR_SRC/examples/data/digits.h5" data/
cat > cnn.ini <<'INI'
[data]
path = data/digits.h5
[model]
input = 1x8x8
layers = conv(6,3,pad=1) bn relu res{conv(6,3,pad=1) bn relu conv(6,3,pad=1) bn} relu maxpool(2)
         dropout(0.2) gap dense(10)
[train]
epochs = 1
batch_size = 16
seed = 3
log_every = 0
[optim]
name = sgd
lr = 0.05
momentum = 0.9
INI
common=(--set train.max_steps=20 --set runtime.progress=none --set train.register=false --set checkpoint.final=false)
# agree A.h5 B.h5 WHAT: every tensor under /model within 1e-3 of its largest value.
agree() {
  $PY - "$1" "$2" <<'PY' && ok "$3 agree" || bad "$3 differ"
import h5py, numpy as np, sys
a, b = h5py.File(sys.argv[1]), h5py.File(sys.argv[2])
worst, names = 0.0, []
a["model"].visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
for n in names:
    x, y = a["model"][n][()].astype(np.float64), b["model"][n][()].astype(np.float64)
    worst = max(worst, float(np.max(np.abs(x - y)) / (np.max(np.abs(x)) + 1e-6)))
print(f"{len(names)} tensors; largest difference {worst:.2e} of the tensor's largest")
sys.exit(0 if names and worst < 1e-3 else 1)
PY
}
for np in 1 2; do
  [ $np -gt "$ngpu" ] && continue
  for d in cpu cuda; do
    mpi $np train cnn.ini "${common[@]}" --set runtime.device=$d --set train.output=$d$np.h5 >$d$np.txt 2>&1 \
      || { bad "$d on $np ranks"; cat $d$np.txt; }
  done
  grep -q 'training on GPU' cuda$np.txt && ok "CNN trained on the GPU on $np rank(s)" || { bad "not on the GPU"; cat cuda$np.txt; }
  [ $np = 2 ] && { grep -q 'comm nccl' cuda2.txt && ok "2 ranks through the nccl back-end" || { bad "no nccl"; cat cuda2.txt; }; }
  agree cpu$np.h5 cuda$np.h5 "CPU and GPU CNN runs on $np rank(s)"
done
if [ "$ngpu" -ge 2 ]; then
  for d in cpu cuda; do
    mpi 2 train cnn.ini "${common[@]}" --set model.sync_bn=true --set runtime.device=$d --set train.output=s$d.h5 \
      >s$d.txt 2>&1 || { bad "sync_bn on $d"; cat s$d.txt; }
  done
  agree scpu.h5 scuda.h5 "CPU and GPU with model.sync_bn on 2 ranks"
fi
# train.reproducible = world: batch norm's statistics deferred and applied
# in the global batch's order, 4 micro-batches summed as a tree.
wr=(--set train.batch_size=4 --set train.global_batch=16 --set train.reproducible=world)
for d in cpu cuda; do
  mpi 1 train cnn.ini "${common[@]}" "${wr[@]}" --set runtime.device=$d --set train.output=w$d.h5 >w$d.txt 2>&1 \
    || { bad "reproducible = world on $d"; cat w$d.txt; }
done
agree wcpu.h5 wcuda.h5 "CPU and GPU with train.reproducible = world"
# Kill and resume on the GPU (TSR_FAULT_KILL, as test_digits_gpu.sh),
# against the uninterrupted 1-rank GPU run above.
TSR_FAULT_KILL=0:13 mpi 1 train cnn.ini "${common[@]}" --set runtime.device=cuda --set train.output=part.h5 \
  --set checkpoint.dir=ck --set checkpoint.every_steps=5 >p1.txt 2>&1 \
  && { bad "the run killed at step 13 did not fail"; cat p1.txt; }
mpi 1 train cnn.ini "${common[@]}" --set runtime.device=cuda --set train.output=part.h5 \
  --set checkpoint.dir=ck --resume auto >p2.txt 2>&1
grep -q 'resumed from' p2.txt && ok "GPU CNN resumed from its checkpoint" || { bad "no resume"; cat p1.txt p2.txt; }
$PY - <<'PY' && ok "GPU CNN resume is byte-identical (weights and running statistics)" || { bad "GPU resume differs"; cat p2.txt; }
import h5py, numpy as np, sys
a, b = h5py.File("cuda1.h5"), h5py.File("part.h5")
names = []
a["model"].visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
sys.exit(0 if names and all(np.array_equal(a["model"][n][()], b["model"][n][()]) for n in names) else 1)
PY
finish
