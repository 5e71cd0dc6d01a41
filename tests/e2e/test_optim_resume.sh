#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The new optimizers' state in checkpoints: a run with LAMB and
# reduce-on-plateau (its state after the arrays), and one with centered
# RMSprop with momentum (three arrays) and a step schedule, killed at a
# step and resumed, end byte-identical to uninterrupted runs. (digits.ini
# without its momentum, which LAMB does not take.)
. "$(dirname "$0")/lib.sh"
sed "/^momentum/d" "$TSR_SRC/examples/digits.ini" > digits.ini && mkdir -p data && cp "$TSR_SRC/examples/data/digits.h5" data/
common=(--set train.epochs=3 --set runtime.progress=none --set checkpoint.every_steps=20 --set checkpoint.keep=2)

try() { # try NAME ARRAYS EXTRA PLATEAU_FLOATS KEYS...: reference, killed run, resume
  local name=$1 arrays=$2 extra=$3; shift 3
  mpi 2 train digits.ini "${common[@]}" "$@" --set train.output=$name-ref.h5 --set checkpoint.dir=$name-rck \
    >$name-ref.txt 2>&1 || { bad "$name: uninterrupted run"; cat $name-ref.txt; return; }
  TSR_FAULT_KILL="1:50" mpi 2 train digits.ini "${common[@]}" "$@" --set checkpoint.dir=$name-ck \
    --set train.output=$name.h5 >$name-kill.txt 2>&1
  [ -e $name.h5 ] && { bad "$name: the killed run wrote its model"; return; }
  mpi 2 train digits.ini "${common[@]}" "$@" --set checkpoint.dir=$name-ck --set train.output=$name.h5 \
    --resume auto >$name-res.txt 2>&1 || { bad "$name: resume failed"; cat $name-res.txt; return; }
  grep -q 'resumed from' $name-res.txt || { bad "$name: did not resume"; cat $name-res.txt; return; }
  same_weights $name-ref.h5 $name.h5 && ok "$name: killed at step 50, resumed, weights byte-identical" \
    || bad "$name: weights differ after resume"
  # The state holds the optimizer's arrays and, with plateau, its 4 floats.
  $PY - "$(ls $name-ck/ckpt-*.h5 | tail -1)" "$arrays" "$extra" <<'PY' && ok "$name: state size" || bad "$name: state size"
import sys, h5py
f = h5py.File(sys.argv[1], "r")
n = sum(f["model"][k][t].size for k in f["model"] for t in f["model"][k])
s = f["optimizer/state"].shape[0]
print("state %d for %d parameters" % (s, n))
sys.exit(0 if s == int(sys.argv[2]) * n + int(sys.argv[3]) else 1)
PY
}

try lamb 2 4 --set optim.name=lamb --set optim.lr=0.01 --set optim.weight_decay=0.01 --set optim.schedule=plateau
try rmsprop 3 0 --set optim.name=rmsprop --set optim.lr=0.001 --set optim.momentum=0.5 --set optim.centered=true \
  --set optim.schedule=step --set optim.step_size=30 --set optim.gamma=0.5
finish
