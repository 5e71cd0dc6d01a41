#!/usr/bin/env bash
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
grep -q 'watchdog: step 31 has waited .* rank 2 did not arrive' out.txt && ok "names the stalled rank" \
  || bad "no line naming rank 2"
[ $took -lt 60 ] && ok "aborted after ${took}s" || bad "took ${took}s"
[ ! -e w.h5 ] && ok "no model file" || bad "model file written"
pgrep -f "$TSR_BIN train digits.ini.*watchdog_seconds=2" >/dev/null && { bad "ranks left running"; pkill -9 -f "$TSR_BIN train digits.ini.*watchdog_seconds=2"; } || ok "no rank left running"
# A rank that hangs in set-up (before the gradient engine, whose
# communicator the others then wait in forever): the phase deadline ends the
# job with 76, each rank naming the phase it was in.
start=$(date +%s)
TSR_FAULT_STALL="1:0" mpi 2 train digits.ini --set runtime.progress=none --set runtime.watchdog_seconds=3 \
  --set train.output=s.h5 >setup.txt 2>&1
rc=$?
took=$(( $(date +%s) - start ))
grep -v '^\s*$' setup.txt | head -12
[ $rc -eq 76 ] && ok "set-up stall: exit code 76" || bad "set-up stall: exit code $rc, expected 76"
grep -q 'rank 1: set-up (data, model, placement) has not finished after' setup.txt \
  && ok "the stalled rank names its phase" || bad "no line from rank 1 naming its phase"
grep -q 'rank 0: set-up of the GPU and the gradient engine .* has not finished after' setup.txt \
  && ok "the waiting rank names the gradient engine's set-up" || bad "no line from rank 0 naming its phase"
[ $took -lt 60 ] && ok "set-up stall ended after ${took}s" || bad "set-up stall took ${took}s"
[ ! -e s.h5 ] && ok "no model file" || bad "model file written"
pgrep -f "$TSR_BIN train digits.ini.*watchdog_seconds=3" >/dev/null \
  && { bad "ranks left running"; pkill -9 -f "$TSR_BIN train digits.ini.*watchdog_seconds=3"; } || ok "no rank left running"
finish
