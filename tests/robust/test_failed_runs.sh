#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# A failed run never looks like a success: NaN or Inf weights stop the run
# (exit 6, nothing written or registered, earlier checkpoints kept); a run
# resumed after it finished changes nothing; a checkpoint whose root
# attributes were changed is refused; no failed checkpoint write is lost.
. "$(dirname "$0")/lib.sh"
cp "$TSR_SRC/examples/digits.ini" . && mkdir -p data && cp "$TSR_SRC/examples/data/digits.h5" data/
# One NaN in row 100 (data.validate = false lets it through to training).
$PY - <<'PY'
import h5py, numpy as np
with h5py.File("data/digits.h5") as f, h5py.File("data/nan.h5", "w") as g:
    X = f["X"][()].astype(np.float32); X[100, 5] = np.nan
    g["X"] = X; g["y"] = f["y"][()]
    g["X_test"] = f["X_test"][()].astype(np.float32); g["y_test"] = f["y_test"][()]
PY
train() { mpi 2 train digits.ini --set runtime.progress=none "$@"; }
regs() { ls registry 2>/dev/null | tr '\n' ' '; }

# Divergence by a huge learning rate: exit 6 at the step it happened, on every rank.
hostile "lr 1e6 diverges" 6 "training diverged at step [0-9]*: the weights became NaN or Inf" \
  timeout 60 "$TSR_MPIEXEC" --oversubscribe --bind-to none -n 2 "$TSR_BIN" train digits.ini --set runtime.progress=none \
  --set optim.lr=1e6 --set train.output=div.h5 --set checkpoint.dir=ck-div --set checkpoint.every_steps=1 \
  --set checkpoint.async=false
[ ! -e div.h5 ] && ok "diverged: no model file" || bad "diverged: a model file was written"
[ -z "$(regs)" ] && ok "diverged: nothing registered" || bad "diverged: registry holds $(regs)"
at=$(grep -o 'diverged at step [0-9]*' h.err | grep -o '[0-9]*$')
newest=$(ls ck-div | sort | tail -1 | sed 's/^ckpt-0*\([0-9]*\)\.h5$/\1/')
[ -n "$newest" ] && [ "$newest" -lt "$at" ] && "$TSR_BIN" ckpt verify ck-div/*.h5 >/dev/null \
  && ok "diverged at step $at: the checkpoints before it (newest $newest) are kept and verify" \
  || bad "diverged at step $at: checkpoints $(ls ck-div | tr '\n' ' ')"

# One NaN sample: stop at the step that used it, or skip that update
# (model.outputs given, so nothing reads every value to count classes).
hostile "a NaN sample stops the run" 6 "training diverged at step" \
  timeout 60 "$TSR_MPIEXEC" --oversubscribe --bind-to none -n 2 "$TSR_BIN" train digits.ini --set runtime.progress=none \
  --set data.path=data/nan.h5 --set data.validate=false --set model.outputs=10 --set train.output=nan.h5
train --set data.path=data/nan.h5 --set data.validate=false --set model.outputs=10 --set train.on_nonfinite=skip_step \
  --set train.output=skip.h5 >skip.log 2>&1
rc=$?
skipped=$(grep -o 'skipped [0-9]* of [0-9]* updates' skip.log)
[ $rc -eq 0 ] && [ -n "$skipped" ] && $PY -c "
import h5py, numpy as np, sys
f = h5py.File('skip.h5'); sys.exit(0 if all(np.isfinite(f[k][()]).all() for k in ['model/layer_0/weight','model/layer_2/weight']) else 1)" \
  && grep -q 'test accuracy 9[0-9]' skip.log \
  && ok "skip_step: $skipped, finite weights, the model still learns" || { bad "skip_step: rc $rc"; cat skip.log; }

# Resumed after it had finished (a requeue of a finished job): nothing changes.
train --set train.output=done.h5 --set checkpoint.dir=ck-done >done1.log 2>&1 || bad "first run failed"
sum=$(sha256sum < done.h5); before=$(regs); ckpts=$(ls ck-done | tr '\n' ' ')
train --set train.output=done.h5 --set checkpoint.dir=ck-done --resume auto >done2.log 2>&1
rc=$?
[ $rc -eq 0 ] && grep -q 'nothing to train' done2.log && [ "$(sha256sum < done.h5)" = "$sum" ] \
  && [ "$(regs)" = "$before" ] && [ "$(ls ck-done | tr '\n' ' ')" = "$ckpts" ] \
  && ok "a finished run resumed: exit 0, model file, registry and checkpoints unchanged" \
  || { bad "finished run resumed: rc $rc"; cat done2.log; }
rm done.h5
train --set train.output=done.h5 --set checkpoint.dir=ck-done --resume auto >done3.log 2>&1
grep -q 'is missing: evaluating and writing it' done3.log && grep -q 'test accuracy 9[0-9]' done3.log && [ -e done.h5 ] \
  && ok "a finished run resumed without its model file writes it, with its accuracy" || { bad "missing model"; cat done3.log; }

# A checkpoint whose step, epoch or world size was changed does not verify.
good=$(ls ck-done/*.h5 | tail -1)
for attr in step epoch world_size samples_seen seed; do
  cp "$good" "flip-$attr.h5"
  $PY -c "import h5py, sys; f = h5py.File('flip-$attr.h5', 'r+'); f.attrs['$attr'] = f.attrs['$attr'] + 1"
  hostile "checkpoint with $attr changed" 3 "flip-$attr.h5: checksum mismatch" "$TSR_BIN" ckpt verify "flip-$attr.h5"
done
mkdir -p ck-flip && cp flip-step.h5 ck-flip/ckpt-0000009999.h5
train --set train.output=flip.h5 --set checkpoint.dir=ck-flip --resume auto >flip.log 2>&1
grep -q 'skipping ck-flip/ckpt-0000009999.h5.*checksum mismatch' flip.log && grep -q 'starting from the beginning' flip.log \
  && ok "resume auto skips the changed checkpoint" || { bad "resume auto took a changed checkpoint"; cat flip.log; }

# No failed checkpoint write is lost: a regular file where the directory goes.
touch blocker
hostile "last scheduled write fails, on_error = stop, final = false" 4 \
  "checkpoint of step 1000 failed and \[checkpoint\] on_error = stop: .*Not a directory" \
  timeout 60 "$TSR_MPIEXEC" --oversubscribe --bind-to none -n 2 "$TSR_BIN" train digits.ini --set runtime.progress=none \
  --set train.output=cf.h5 --set checkpoint.dir=blocker --set checkpoint.every_steps=1000 --set checkpoint.final=false \
  --set checkpoint.on_error=stop
[ ! -e cf.h5 ] && ok "on_error = stop: no model file" || bad "on_error = stop wrote the model file"
train --set train.output=cc.h5 --set checkpoint.dir=blocker --set checkpoint.every_steps=100 \
  --set checkpoint.on_error=continue >cc.log 2>&1
rc=$?
n=$(grep -c 'warning: .*checkpoint of step [0-9]* failed' cc.log)
[ $rc -eq 0 ] && [ "$n" -eq 18 ] && grep -q 'checkpoints: 0 written, 18 failed' cc.log \
  && ok "on_error = continue: all 18 failed writes (17 every 100 steps and the final one) warned and listed" \
  || { bad "on_error = continue: rc $rc, $n warnings"; grep -c warning cc.log; tail -3 cc.log; }
# A full disk, while the write before is still in flight (every step,
# asynchronous): two checkpoints (210 KB each) fit, the third does not.
if [ "$(id -u)" -eq 0 ] && mkdir -p full && mount -t tmpfs -o size=512k tmpfs full 2>/dev/null; then
  hostile "full disk, on_error = stop" 4 "on_error = stop: .*No space left on device" \
    timeout 60 "$TSR_MPIEXEC" --oversubscribe --bind-to none -n 2 "$TSR_BIN" train digits.ini \
    --set runtime.progress=none --set train.output=fd.h5 --set checkpoint.dir=full --set checkpoint.every_steps=1 \
    --set checkpoint.keep=2 --set checkpoint.on_error=stop
  ls full/*.h5 >/dev/null 2>&1 && "$TSR_BIN" ckpt verify full/*.h5 >/dev/null && [ -z "$(ls -A full | grep tmp)" ] \
    && ok "full disk: the checkpoint before verifies, no temporary left" || bad "full disk: $(ls -A full)"
  umount -l full
else
  echo "note: not root or no tmpfs: the full-disk case is not run"
fi
robust_finish
