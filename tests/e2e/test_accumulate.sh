#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Gradient accumulation and train.global_batch: the same global batch gives
# the same training whatever the ranks and micro-batches (to rounding: the
# sums run in another order), a run with dropout and batch norm killed
# mid-way resumes byte-identical, and bad shapes are refused naming the
# nearest valid values.
. "$(dirname "$0")/lib.sh"
cp "$TSR_SRC/examples/digits.ini" . && mkdir -p data && cp "$TSR_SRC/examples/data/digits.h5" data/
common=(--set train.epochs=3 --set runtime.progress=none --set train.register=false --set runtime.comm=mpi)

maxdiff() { # maxdiff A B: the largest absolute difference of the model files' tensors
  $PY - "$1" "$2" <<'PY'
import sys, h5py, numpy as np
def w(p):
    out = []
    h5py.File(p, "r")["model"].visititems(lambda n, o: out.append(o[()].ravel()) if isinstance(o, h5py.Dataset) else None)
    return np.concatenate(out)
print("%.3g" % np.abs(w(sys.argv[1]) - w(sys.argv[2])).max())
PY
}

mpi 1 train digits.ini "${common[@]}" --set train.batch_size=128 --set train.output=b128.h5 >ref.txt 2>&1 \
  && ok "1 rank x batch 128" || { bad "reference run"; cat ref.txt; }
run() { # run NAME NP ARGS...: trains, checks the log's batch line, compares with b128.h5
  local name=$1 np=$2; shift 2
  mpi "$np" train digits.ini "${common[@]}" --set train.output="$name.h5" "$@" >"$name.txt" 2>&1
  local rc=$? d
  d=$(maxdiff b128.h5 "$name.h5" 2>/dev/null)
  [ $rc -eq 0 ] && grep -q 'global batch 128)' "$name.txt" && grep -q ' 11 steps/epoch' "$name.txt" \
    && awk -v d="$d" 'BEGIN{exit !(d != "" && d + 0 <= 1e-5)}' \
    && ok "$name: the same weights as 1 rank x batch 128 to rounding (max difference $d)" \
    || { bad "$name: rc $rc, max difference '$d'"; cat "$name.txt"; }
}
run acc4 1 --set train.batch_size=32 --set train.accumulate_steps=4
run acc2x2 2 --set train.batch_size=32 --set train.accumulate_steps=2
run global2 2 --set train.batch_size=16 --set train.global_batch=128
run global3 1 --set train.batch_size=64 --set train.global_batch=128 --set runtime.comm=auto

# Killed and resumed with accumulation, dropout and batch norm: byte-identical.
cnn=(--set train.epochs=4 --set train.batch_size=8 --set train.accumulate_steps=3 --set checkpoint.every_steps=20
     --set runtime.progress=none --set train.register=false)
cp "$TSR_SRC/examples/digits_cnn.ini" .
mpi 2 train digits_cnn.ini "${cnn[@]}" --set train.output=cref.h5 --set checkpoint.dir=cref >cref.txt 2>&1 \
  || { bad "CNN reference run"; cat cref.txt; }
TSR_FAULT_KILL=1:47 mpi 2 train digits_cnn.ini "${cnn[@]}" --set train.output=ck.h5 --set checkpoint.dir=ck >kill.txt 2>&1
[ $? -ne 0 ] && [ ! -e ck.h5 ] || bad "the killed run did not fail"
mpi 2 train digits_cnn.ini "${cnn[@]}" --set train.output=ck.h5 --set checkpoint.dir=ck --resume auto >res.txt 2>&1
d=$(maxdiff cref.h5 ck.h5 2>/dev/null)
grep -q 'resumed from ck/ckpt-0000000040.h5' res.txt && [ "$d" = 0 ] \
  && ok "accumulate 3 with dropout and batch norm: killed after step 47, resumed at 40, byte-identical" \
  || { bad "accumulation resume: max difference '$d'"; cat res.txt; }

# Accumulation with reduce-on-plateau on the test loss (evaluated every 20
# steps; a learning rate too high, so the loss turns up and the schedule
# cuts): killed and resumed, byte-identical, the same cuts.
pl=(--set train.epochs=6 --set train.batch_size=8 --set train.accumulate_steps=2 --set train.eval_every=20
    --set optim.lr=0.3 --set optim.schedule=plateau --set optim.plateau_patience=1 --set optim.plateau_factor=0.5
    --set optim.warmup_steps=0 --set checkpoint.every_steps=15 --set runtime.progress=lines --set train.log_every=10
    --set train.register=false)
mpi 2 train digits.ini "${pl[@]}" --set train.output=pref.h5 --set checkpoint.dir=pref >pref.txt 2>&1 \
  || { bad "plateau reference run"; cat pref.txt; }
TSR_FAULT_KILL=0:100 mpi 2 train digits.ini "${pl[@]}" --set train.output=pk.h5 --set checkpoint.dir=pk >pk1.txt 2>&1
mpi 2 train digits.ini "${pl[@]}" --set train.output=pk.h5 --set checkpoint.dir=pk --resume auto >pk2.txt 2>&1
d=$(maxdiff pref.h5 pk.h5 2>/dev/null)
lrs() { sed -n 's/.* lr \([0-9.e-]*\) .*/\1/p' "$@" | sort -gu | tr '\n' ' '; }
cuts=$(lrs pref.txt)
# (the newest committed checkpoint: step 90 unless its asynchronous write was still under way at the kill)
grep -qE 'resumed from pk/ckpt-00000000(90|75|60).h5' pk2.txt && [ "$d" = 0 ] && [ "$(echo "$cuts" | wc -w)" -ge 2 ] \
  && ok "accumulate 2 + reduce-on-plateau (learning rates seen: $cuts): killed after step 100, resumed at $(sed -n "s/.*resumed from pk.ckpt-0*\\([0-9]*\\).*/\\1/p" pk2.txt), byte-identical" \
  || { bad "plateau resume: max difference '$d', learning rates '$cuts'"; grep -E 'resumed|error' pk1.txt pk2.txt; }

# Bad shapes: one line naming the key and what would do.
hostile_run() { # NAME PATTERN ARGS...
  local name=$1 pat=$2; shift 2
  mpi 2 train digits.ini "${common[@]}" --set train.output=bad.h5 "$@" >b.txt 2>&1
  local rc=$?
  [ $rc -eq 2 ] && [ "$(grep -c 'error:' b.txt)" -ge 1 ] && grep -q -- "$pat" b.txt && [ ! -e bad.h5 ] \
    && ok "$name: exit 2, $(grep -m1 'error:' b.txt | cut -c1-150)" || { bad "$name: rc $rc"; cat b.txt; }
}
hostile_run "accumulate_steps = 0" "accumulate_steps" --set train.accumulate_steps=0
hostile_run "global batch 100 on 2 ranks x 16" "the nearest valid global batches are 96 or 128" \
  --set train.batch_size=16 --set train.global_batch=100
hostile_run "global batch 8 on 2 ranks x 16" "the nearest valid global batches are 32" \
  --set train.batch_size=16 --set train.global_batch=8
hostile_run "global_batch and accumulate_steps both" "set one of them" \
  --set train.global_batch=128 --set train.accumulate_steps=2
hostile_run "a global batch larger than the data" "exceeds the 1438 rows" \
  --set train.batch_size=512 --set train.accumulate_steps=2
finish
