#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# A rank that hangs mid-training is caught by the stall watchdog: the job
# aborts with exit 76 and a line naming the rank, instead of hanging.
. "$(dirname "$0")/lib.sh"
cp "$TSR_SRC/examples/digits.ini" . && mkdir -p data && cp "$TSR_SRC/examples/data/digits.h5" data/
start=$(date +%s)
TSR_FAULT_STALL="2:30" mpi 3 train digits.ini --set runtime.progress=none --set runtime.watchdog_seconds=2 \
  --set train.output=w.h5 >out.txt 2>&1
rc=$?
took=$(( $(date +%s) - start ))
cat out.txt | grep -v '^\s*$' | head -20
[ $rc -eq 76 ] && ok "exit code 76" || bad "exit code $rc, expected 76"
grep -q 'watchdog: rank 2 (host .*, pid [0-9]*) did not arrive at the step agreement of step 31' out.txt \
  && ok "names the stalled rank" \
  || bad "no line naming rank 2"
[ $took -lt 60 ] && ok "aborted after ${took}s" || bad "took ${took}s"
[ ! -e w.h5 ] && ok "no model file" || bad "model file written"
pgrep -f "$TSR_BIN train digits.ini.*watchdog_seconds=2" >/dev/null && { bad "ranks left running"; pkill -9 -f "$TSR_BIN train digits.ini.*watchdog_seconds=2"; } || ok "no rank left running"
# A rank that hangs in set-up (before the gradient engine, whose
# communicators are made by blocking calls): the others wait for it at a
# watched barrier first and name it; its own phase deadline names its phase.
start=$(date +%s)
TSR_FAULT_STALL="1:0" mpi 2 train digits.ini --set runtime.progress=none --set runtime.watchdog_seconds=3 \
  --set train.output=s.h5 >setup.txt 2>&1
rc=$?
took=$(( $(date +%s) - start ))
grep -v '^\s*$' setup.txt | head -12
[ $rc -eq 76 ] && ok "set-up stall: exit code 76" || bad "set-up stall: exit code $rc, expected 76"
grep -q 'rank 1: set-up (data, model, placement) has not finished after\|watchdog: rank 1 (host .*) did not arrive at the start of the GPU and gradient engine set-up' setup.txt \
  && ok "rank 1 is named" || bad "no line naming rank 1"
[ $took -lt 60 ] && ok "set-up stall ended after ${took}s" || bad "set-up stall took ${took}s"
[ ! -e s.h5 ] && ok "no model file" || bad "model file written"
pgrep -f "$TSR_BIN train digits.ini.*watchdog_seconds=3" >/dev/null \
  && { bad "ranks left running"; pkill -9 -f "$TSR_BIN train digits.ini.*watchdog_seconds=3"; } || ok "no rank left running"
finish
