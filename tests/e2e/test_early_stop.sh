#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Early stopping, evaluation every N steps and keep_best: the run stops
# when the test loss has not improved for `patience` evaluations, the model
# file holds the best evaluation's weights (byte-identical to a run stopped
# at that step), a run killed mid-way and resumed stops at the same step with
# the same weights, and a requeue of a stopped run trains nothing.
. "$(dirname "$0")/lib.sh"
cp "$TSR_SRC/examples/digits.ini" . && mkdir -p data && cp "$TSR_SRC/examples/data/digits.h5" data/
# A constant, too high learning rate: the test loss turns up after a few epochs.
common=(--set train.epochs=30 --set runtime.progress=lines --set train.log_every=0 --set train.register=false
        --set optim.lr=0.3 --set optim.schedule=constant --set optim.warmup_steps=0)
early=(--set train.early_stop_patience=3 --set train.eval_every=40 --set train.keep_best=true)

mpi 2 train digits.ini "${common[@]}" "${early[@]}" --set train.output=es.h5 --set checkpoint.dir=es-ck >es.txt 2>&1
rc=$?
stop=$(sed -n 's/.*early stopping at step \([0-9]*\):.*/\1/p' es.txt)
best=$(sed -n 's/.*keep_best: the model file holds the weights of step \([0-9]*\) .*/\1/p' es.txt)
[ $rc -eq 0 ] && [ -n "$stop" ] && [ -n "$best" ] && [ "$best" -lt "$stop" ] && [ "$stop" -lt $((30 * 44)) ] \
  && ok "stopped early at step $stop of $((30 * 44)), best evaluation at step $best" || { bad "early stop: rc $rc"; cat es.txt; }
# Evaluations: every 40 steps and at each epoch's end (44 steps).
grep -q '^tessera: step 40 test loss' es.txt && grep -q 'epoch 1/30 train loss .* test loss' es.txt \
  && ok "evaluated every 40 steps and at epoch ends" || { bad "evaluation points"; cat es.txt; }

# The best weights are those of a run that stops at that step (constant schedule: same updates).
mpi 2 train digits.ini "${common[@]}" --set train.max_steps="$best" --set train.output=at-best.h5 \
  --set checkpoint.dir=ab-ck >ab.txt 2>&1 || { bad "run to step $best"; cat ab.txt; }
$PY - es.h5 at-best.h5 <<'PY' && ok "keep_best: the model file is byte-identical to training stopped at step $best" \
  || bad "keep_best weights differ from step $best's"
import sys, h5py
def w(p):
    out = []
    h5py.File(p, "r")["model"].visititems(lambda n, o: out.append((n, o[()].tobytes())) if isinstance(o, h5py.Dataset) else None)
    return out
sys.exit(0 if w(sys.argv[1]) == w(sys.argv[2]) else 1)
PY
acc=$(sed -n 's/.*keep_best: .*accuracy \([0-9.]*\)%.*/\1/p' es.txt)
grep -q "done: test accuracy $acc%" es.txt && grep -q "top-1 accuracy $acc%" es.txt \
  && ok "the summary and the final metrics are the best model's ($acc%)" || { bad "summary of the best model"; cat es.txt; }

# Killed after the best evaluation, resumed: the same stop, the same bytes.
kill_step=$(( (best + stop) / 2 ))
TSR_FAULT_KILL=1:$kill_step mpi 2 train digits.ini "${common[@]}" "${early[@]}" --set train.output=k.h5 \
  --set checkpoint.dir=k-ck --set checkpoint.every_steps=22 >k1.txt 2>&1
[ $? -ne 0 ] && [ ! -e k.h5 ] || bad "the killed run did not fail"
mpi 2 train digits.ini "${common[@]}" "${early[@]}" --set train.output=k.h5 --set checkpoint.dir=k-ck \
  --set checkpoint.every_steps=22 --resume auto >k2.txt 2>&1
cmp -s <($PY -c 'import h5py,sys; f=h5py.File("es.h5"); [sys.stdout.buffer.write(o[()].tobytes()) for o in [f["model"][k][d] for k in sorted(f["model"]) for d in f["model"][k]]]') \
       <($PY -c 'import h5py,sys; f=h5py.File("k.h5"); [sys.stdout.buffer.write(o[()].tobytes()) for o in [f["model"][k][d] for k in sorted(f["model"]) for d in f["model"][k]]]') \
  && grep -q "early stopping at step $stop:" k2.txt && grep -q 'resumed from' k2.txt \
  && ok "killed at step $kill_step and resumed: stopped at step $stop again, byte-identical weights" \
  || { bad "resume with early stopping"; grep -E 'resumed|early|keep_best|error' k1.txt k2.txt; }

# A requeue of a run that stopped early: its final checkpoint says so, nothing trains.
mpi 2 train digits.ini "${common[@]}" "${early[@]}" --set train.output=es.h5 --set checkpoint.dir=es-ck \
  --resume auto >rq.txt 2>&1 && grep -q 'training had finished' rq.txt && ! grep -q 'epoch [0-9]*/30' rq.txt \
  && ok "a requeued early-stopped run trains nothing" || { bad "requeue after early stop"; cat rq.txt; }

# Bad settings: one line, exit 2.
mpi 2 train digits.ini "${common[@]}" "${early[@]}" --set train.eval=false --set train.output=x.h5 >b.txt 2>&1
[ $? -eq 2 ] && grep -q 'early_stop_patience.*train.eval = false' b.txt && [ ! -e x.h5 ] \
  && ok "patience without evaluation: exit 2, $(grep -m1 error: b.txt | cut -c1-120)" || { bad "patience without eval"; cat b.txt; }
mpi 2 train digits.ini "${common[@]}" "${early[@]}" --set train.early_stop_min_delta=-1 --set train.output=x.h5 >b.txt 2>&1
[ $? -eq 2 ] && grep -q 'early_stop_min_delta' b.txt && ok "a negative min_delta: exit 2" || { bad "min_delta"; cat b.txt; }
mpi 2 train digits.ini "${common[@]}" --set train.early_stop_metric=bogus --set train.output=x.h5 >b.txt 2>&1
[ $? -eq 2 ] && grep -q 'early_stop_metric' b.txt && ok "an unknown metric: exit 2" || { bad "metric"; cat b.txt; }
finish
