#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The bundled digits model trained by the program on the CPU and on a GPU
# (runtime.device = cpu / cuda, same seed, 1 rank) agrees to float
# tolerance: test accuracy within 1 point, weights close (also with LAMB
# and Lion); a checkpoint
# written from the GPU resumes on the GPU bit-identically to an
# uninterrupted GPU run. With 2+ GPUs the same on 2 ranks through NCCL.
# Exits 77 (skipped) without a CUDA device. With TSR_CUDAEMU=1 and TSR_BIN
# the emulator's program, the same checks run on the CPU CUDA emulator.
. "$TSR_SRC/tests/e2e/lib.sh"
if [ -n "${TSR_CUDAEMU:-}" ]; then
  ngpu=${TSR_CUDAEMU_DEVICES:-1} # the CPU CUDA emulator (tests/cudaemu) and its NCCL over MPI
else
  ngpu=$(nvidia-smi -L 2>/dev/null | grep -c GPU)
fi
if [ "${ngpu:-0}" -lt 1 ]; then
  echo "SKIP: no GPU (nvidia-smi -L lists none)"
  exit 77
fi
cp "$TSR_SRC/examples/digits.ini" . && mkdir -p data && cp "$TSR_SRC/examples/data/digits.h5" data/
# Fewer epochs on the emulator, whose kernels run about 10 times slower.
epochs=10
[ -n "${TSR_CUDAEMU:-}" ] && epochs=4
common=(--set train.epochs=$epochs --set runtime.progress=none --set train.register=false --set checkpoint.final=false)
mpi 1 train digits.ini "${common[@]}" --set runtime.device=cpu --set train.output=cpu.h5 >cpu.txt 2>&1 \
  && ok "CPU run" || { bad "CPU run"; cat cpu.txt; }
mpi 1 train digits.ini "${common[@]}" --set runtime.device=cuda --set train.output=gpu.h5 >gpu.txt 2>&1 \
  && grep -q 'training on GPU' gpu.txt && ok "GPU run" || { bad "GPU run"; cat gpu.txt; }
# agree A.h5 B.h5 WHAT: test accuracy within 1 point, weights close.
agree() {
  $PY - "$1" "$2" <<'PY' && ok "$3 agree (accuracy within 1 point, weights close)" || bad "$3 differ"
import h5py, numpy as np, sys
a, b = h5py.File(sys.argv[1]), h5py.File(sys.argv[2])
acc = [float(f.attrs["test_accuracy"]) for f in (a, b)]
worst = 0.0
for name in a["model"]:
    for ds in ("weight", "bias"):
        x, y = a["model"][name][ds][()], b["model"][name][ds][()]
        worst = max(worst, float(np.max(np.abs(x - y)) / (np.max(np.abs(x)) + 1e-6)))
print(f"accuracy {acc[0]:.4f} and {acc[1]:.4f}; largest weight difference {worst:.2e} of the layer's largest")
sys.exit(0 if abs(acc[0] - acc[1]) <= 0.01 and worst < 0.05 else 1)
PY
}
agree cpu.h5 gpu.h5 "CPU and GPU"
# Gradient accumulation on the GPU (the earlier micro-batches summed on the
# device, added into the last one's gradients as its backward finishes
# layers): 2 x 16 against a plain batch of 32 on the CPU.
mpi 1 train digits.ini "${common[@]}" --set runtime.device=cuda --set train.batch_size=16 \
  --set train.accumulate_steps=2 --set train.output=gacc.h5 >gacc.txt 2>&1 \
  && grep -q '2 micro-batches of 16' gacc.txt && ok "GPU run with accumulation" || { bad "GPU accumulation"; cat gacc.txt; }
mpi 1 train digits.ini "${common[@]}" --set runtime.device=cpu --set train.batch_size=32 --set train.output=cpu32.h5 \
  >cpu32.txt 2>&1 || { bad "CPU run, batch 32"; cat cpu32.txt; }
agree cpu32.h5 gacc.h5 "CPU batch 32 and GPU 2 x 16 accumulated"
# train.reproducible = world on the GPU: 4 micro-batches summed as a tree on
# the device, the engine forced to mpi; close to the CPU's world run.
wr=(--set train.batch_size=8 --set train.global_batch=32 --set train.reproducible=world)
mpi 1 train digits.ini "${common[@]}" --set runtime.device=cuda "${wr[@]}" --set train.output=gwr.h5 >gwr.txt 2>&1 \
  && grep -q '4 micro-batches of 8' gwr.txt && ok "GPU run with reproducible = world" || { bad "GPU world run"; cat gwr.txt; }
mpi 1 train digits.ini "${common[@]}" --set runtime.device=cpu "${wr[@]}" --set train.output=cwr.h5 >cwr.txt 2>&1 \
  || { bad "CPU world run"; cat cwr.txt; }
agree cwr.h5 gwr.h5 "CPU and GPU with reproducible = world (tree accumulation)"
# The layer-wise and sign-based optimizers through the whole program too.
sed "/^momentum/d" digits.ini > nomom.ini
for o in "lamb --set optim.lr=0.01" "lion --set optim.lr=0.001 --set optim.weight_decay=0.1"; do
  n=${o%% *}
  for d in cpu cuda; do
    mpi 1 train nomom.ini "${common[@]}" --set train.epochs=1 --set runtime.device=$d --set optim.name=$o \
      --set train.output=$n-$d.h5 >$n-$d.txt 2>&1 || { bad "$n on $d"; cat $n-$d.txt; }
  done
  agree $n-cpu.h5 $n-cuda.h5 "optim.name = $n on CPU and GPU"
done
# Resume on the GPU: the run dies after step 130 (TSR_FAULT_KILL, as
# tests/e2e/test_resume.sh) and resumes from its last checkpoint. Not
# train.max_steps: that also shortens the learning-rate schedule.
mpi 1 train digits.ini "${common[@]}" --set runtime.device=cuda --set train.output=full.h5 >full.txt 2>&1
TSR_FAULT_KILL=0:130 mpi 1 train digits.ini "${common[@]}" --set runtime.device=cuda --set train.output=part.h5 \
  --set checkpoint.dir=ck --set checkpoint.every_steps=50 >p1.txt 2>&1 \
  && { bad "the run killed at step 130 did not fail"; cat p1.txt; }
mpi 1 train digits.ini "${common[@]}" --set runtime.device=cuda --set train.output=part.h5 \
  --set checkpoint.dir=ck --resume auto >p2.txt 2>&1
grep -q 'resumed from' p2.txt && ok "GPU run resumed from a GPU checkpoint" || { bad "no resume"; cat p1.txt p2.txt; }
$PY - <<'PY' && ok "GPU resume is bit-identical" || { bad "GPU resume differs"; cat p1.txt p2.txt; }
import h5py, numpy as np, sys
a, b = h5py.File("full.h5"), h5py.File("part.h5")
sys.exit(0 if all(np.array_equal(a["model"][n][d][()], b["model"][n][d][()]) for n in a["model"] for d in ("weight", "bias")) else 1)
PY
if [ "$ngpu" -ge 2 ]; then
  mpi 2 train digits.ini "${common[@]}" --set runtime.device=cuda --set train.output=g2.h5 >g2.txt 2>&1 \
    && grep -q 'comm nccl' g2.txt && ok "2 ranks on 2 GPUs through NCCL" || { bad "2 GPUs"; cat g2.txt; }
  mpi 2 train digits.ini "${common[@]}" --set runtime.device=cpu --set train.output=c2.h5 >c2.txt 2>&1 \
    && ok "CPU run on 2 ranks" || { bad "CPU run on 2 ranks"; cat c2.txt; }
  agree c2.h5 g2.h5 "2 ranks on CPUs and on GPUs"
fi
finish
