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
finish
