#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Mixed precision through the program (train.precision): the bundled digits
# model trained on a GPU in fp32, bf16 and fp16 (same seed, 1 rank) reaches
# a test accuracy within 2 points of fp32's; fp16 with a loss scale forced
# too high (train.loss_scale = 2^24, growth every 10 steps) skips the
# overflowing steps, reports them, and still trains; killed and resumed
# from a checkpoint (which holds the scaler's state) it ends bit-identical
# to the uninterrupted run. With 2+ GPUs: bf16 on 2 ranks through NCCL with
# the gradients summed in bf16 (comm_precision = compute) and in fp32, each
# within 2 points of fp32 on 2 ranks, and not equal to each other.
# Exits 77 (skipped) without a CUDA device. With TSR_CUDAEMU=1 and TSR_BIN
# the emulator's program, the same checks run on the CPU CUDA emulator.
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
cp "$TSR_SRC/examples/digits.ini" . && mkdir -p data && cp "$TSR_SRC/examples/data/digits.h5" data/
epochs=10
# The emulator's kernels are slow, and slower still on a shared machine.
[ -n "${TSR_CUDAEMU:-}" ] && epochs=2 && export TSR_MPI_TIMEOUT=${TSR_MPI_TIMEOUT:-400}
common=(--set train.epochs=$epochs --set runtime.progress=none --set train.register=false --set checkpoint.final=false
        --set runtime.device=cuda)
for p in fp32 bf16 fp16; do
  mpi 1 train digits.ini "${common[@]}" --set train.precision=$p --set train.output=$p.h5 >$p.txt 2>&1 \
    && grep -q "training on GPU .* in $p" $p.txt && ok "$p run on the GPU" || { bad "$p run"; cat $p.txt; }
done
grep -q 'fp16 loss scaling: skipped 0 of' fp16.txt && ok "fp16 at the default scale skipped no step" \
  || { bad "fp16 report"; cat fp16.txt; }
# close A.h5 B.h5 POINTS WHAT: test accuracies within POINTS points.
close() {
  $PY - "$1" "$2" "$3" <<'PY' && ok "$4 (accuracy within $3 points)" || bad "$4"
import h5py, sys
acc = [float(h5py.File(f).attrs["test_accuracy"]) for f in sys.argv[1:3]]
print(f"accuracy {acc[0]:.4f} and {acc[1]:.4f}")
sys.exit(0 if abs(acc[0] - acc[1]) * 100 <= float(sys.argv[3]) else 1)
PY
}
close fp32.h5 bf16.h5 2 "bf16 against fp32"
close fp32.h5 fp16.h5 2 "fp16 against fp32"
# Overflows on purpose: 2^24 / batch 16 puts the output deltas beyond fp16's
# 65504, so the first steps skip and back off; growth every 10 steps brings
# the overflow back now and then.
hot=(--set train.precision=fp16 --set train.loss_scale=16777216 --set train.loss_scale_interval=10)
mpi 1 train digits.ini "${common[@]}" "${hot[@]}" --set train.output=hot.h5 >hot.txt 2>&1 || { bad "fp16 hot"; cat hot.txt; }
skipped=$(sed -n 's/.*fp16 loss scaling: skipped \([0-9]*\) of.*/\1/p' hot.txt)
[ "${skipped:-0}" -ge 4 ] && ok "fp16 with scale 2^24 skipped $skipped overflowing steps and said so" \
  || { bad "fp16 hot: skipped '${skipped}'"; cat hot.txt; }
close fp32.h5 hot.h5 3 "fp16 with skipped steps against fp32"
# Kill at step 130 (TSR_FAULT_KILL, as test_digits_gpu.sh), resume: the
# scaler's scale and counters come back from the checkpoint.
TSR_FAULT_KILL=0:130 mpi 1 train digits.ini "${common[@]}" "${hot[@]}" --set train.output=part.h5 \
  --set checkpoint.dir=ck --set checkpoint.every_steps=50 >p1.txt 2>&1 \
  && { bad "the run killed at step 130 did not fail"; cat p1.txt; }
$PY - <<'PY' && ok "the fp16 checkpoint holds the scaler's state" || bad "no scaler state in the checkpoint"
import glob, h5py, sys
f = h5py.File(sorted(glob.glob("ck/*.h5"))[-1])
scale, good, skipped = float(f["amp/scale"][0]), int(f["amp/good_steps"][0]), int(f["amp/skipped_steps"][0])
print(f"scale {scale:g}, good steps {good}, skipped {skipped}")
sys.exit(0 if 1 <= scale < 2 ** 24 and skipped >= 4 and 0 <= good < 10 else 1)
PY
mpi 1 train digits.ini "${common[@]}" "${hot[@]}" --set train.output=part.h5 --set checkpoint.dir=ck --resume auto \
  >p2.txt 2>&1
grep -q 'resumed from' p2.txt && ok "fp16 run resumed" || { bad "no resume"; cat p1.txt p2.txt; }
same_weights hot.h5 part.h5 && ok "fp16 resume with the scaler's state is bit-identical" \
  || { bad "fp16 resume differs"; cat p2.txt; }
grep -q "fp16 loss scaling: skipped $skipped of" p2.txt && ok "the resumed run reports the same $skipped skipped steps" \
  || { bad "skipped count after resume"; cat p2.txt; }
if [ "$ngpu" -ge 2 ]; then
  mpi 2 train digits.ini "${common[@]}" --set train.output=f2.h5 >f2.txt 2>&1 || { bad "fp32 on 2 GPUs"; cat f2.txt; }
  for c in compute fp32; do
    mpi 2 train digits.ini "${common[@]}" --set train.precision=bf16 --set runtime.comm_precision=$c \
      --set train.output=b2-$c.h5 >b2-$c.txt 2>&1 && grep -q 'comm nccl' b2-$c.txt \
      && ok "bf16 on 2 GPUs through NCCL, gradients summed in $c" || { bad "bf16 2 GPUs ($c)"; cat b2-$c.txt; }
    close f2.h5 b2-$c.h5 2 "bf16 on 2 ranks (comm_precision = $c) against fp32 on 2"
  done
  # The bf16 sums round each rank's gradients: the weights differ from the fp32 sums' run.
  same_weights b2-compute.h5 b2-fp32.h5 && bad "comm_precision = compute gave fp32's weights: no bf16 sums" \
    || ok "comm_precision = compute and fp32 give different weights (the sums ran in bf16)"
fi
finish
