#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# A rank that hangs or is stopped anywhere in a training run, on either
# back-end, with 2 and 3 ranks, rank 0 or not: the job ends with exit 76
# within the watchdog and a bounded grace, one line names the rank that did
# not arrive (with its host and pid), and no rank is left running. The
# hangs come from the fault hook (TSR_FAULT_STALL=RANK:STEP or RANK:@POINT)
# and from SIGSTOP sent from outside at a random moment.
. "$(dirname "$0")/lib.sh"
cp "$TSR_SRC/examples/digits.ini" . && mkdir -p data && cp "$TSR_SRC/examples/data/digits.h5" data/
WD=4
FIGURES=""

left_running() { pgrep -f "$TSR_BIN train digits.ini.*wd-$1" >/dev/null; }

# check NAME LOG RC VICTIM: exit 76, exactly one error line, naming VICTIM
# and no other rank as missing.
check() {
  local name=$1 log=$2 rc=$3 victim=$4 maxlines=${5:-1}
  CASES=$((CASES + 1))
  local lines
  lines=$(grep -c 'error:' "$log")
  if [ "$rc" -ne 76 ]; then bad "$name: exit $rc, expected 76"; grep -v '^\s*$' "$log" | tail -8; return; fi
  if ! grep -q "watchdog: rank $victim (host [^,]*, pid [0-9]*) did not arrive\|rank $victim: set-up .* has not finished" "$log"; then
    bad "$name: no line naming rank $victim"; grep 'error:' "$log"; return
  fi
  if grep 'did not arrive' "$log" | grep -v "watchdog: rank $victim (" | grep -q .; then
    bad "$name: another rank named as missing"; grep 'error:' "$log"; return
  fi
  if [ "$lines" -lt 1 ] || [ "$lines" -gt "$maxlines" ]; then bad "$name: $lines error lines"; grep 'error:' "$log"; return; fi
  ok "$name ($(grep -m1 'error:' "$log" | cut -c1-160))"
}

# hook NAME NP COMM SPEC VICTIM [MAXLINES] [ARGS...]
hook() {
  local name=$1 np=$2 comm=$3 spec=$4 victim=$5 maxlines=$6; shift 6
  local tag="wd-$RANDOM"
  TSR_FAULT_STALL=$spec timeout 90 "$TSR_MPIEXEC" --oversubscribe --bind-to none -n "$np" "$TSR_BIN" train digits.ini \
    --set runtime.progress=none --set runtime.watchdog_seconds=$WD --set runtime.comm="$comm" \
    --set train.output="$tag.h5" "$@" >"$tag.log" 2>&1
  local rc=$?
  check "$name" "$tag.log" $rc "$victim" "$maxlines"
  left_running "$tag" && { bad "$name: ranks left running"; pkill -9 -f "$TSR_BIN train digits.ini.*$tag"; }
  [ -e "$tag.h5" ] && bad "$name: a model file was written"
}

# stop NAME NP COMM VICTIM: SIGSTOP the rank VICTIM at a random moment of a long run.
stop() {
  local name=$1 np=$2 comm=$3 victim=$4
  local tag="wd-$RANDOM"
  "$TSR_MPIEXEC" --oversubscribe --bind-to none -n "$np" "$TSR_BIN" train digits.ini --set runtime.progress=none \
    --set runtime.watchdog_seconds=$WD --set runtime.comm="$comm" --set train.epochs=1000000 \
    --set train.output="$tag.h5" >"$tag.log" 2>&1 &
  local mp=$! vp=""
  # Once training runs (set-up's blocking calls are the phase deadline's,
  # which cannot name a rank), at a random moment.
  for _ in $(seq 600); do grep -q 'training data/digits.h5' "$tag.log" && break; sleep 0.1; done
  sleep "0.$((RANDOM % 10))"
  for p in $(pgrep -P $mp); do
    [ "$(tr '\0' '\n' < /proc/$p/environ | sed -n 's/^OMPI_COMM_WORLD_RANK=//p')" = "$victim" ] && vp=$p
  done
  if [ -z "$vp" ]; then bad "$name: rank $victim not found"; kill -9 $mp; wait $mp; return; fi
  kill -STOP "$vp"
  local t0 rc
  t0=$(date +%s.%N)
  ( sleep 60; kill -9 $mp 2>/dev/null ) & local guard=$!
  wait $mp; rc=$?
  local took
  took=$(echo "$(date +%s.%N) - $t0" | bc)
  kill $guard 2>/dev/null
  check "$name" "$tag.log" $rc "$victim"
  grep -q "watchdog: rank $victim (host [^,]*, pid $vp)" "$tag.log" || bad "$name: the line does not give pid $vp"
  kill -9 "$vp" 2>/dev/null
  sleep 0.5
  left_running "$tag" && { bad "$name: ranks left running"; pkill -9 -f "$TSR_BIN train digits.ini.*$tag"; }
  FIGURES="$FIGURES $took"
  echo "  $name: every rank gone $(printf %.2f "$took") s after SIGSTOP (watchdog $WD s)"
}

# The fault hook: log points, epoch ends (evaluation), set-up, the gradient
# sums, the end.
hook "rank 1 hangs at a log step, 2 ranks, shm" 2 shm 1:50 1 1
hook "rank 0 hangs at a log step, 2 ranks, mpi" 2 mpi 0:50 0 1
hook "rank 2 hangs at an epoch end, 3 ranks, shm" 3 shm 2:29 2 1
hook "rank 0 hangs before evaluation, 3 ranks, mpi" 3 mpi 0:@eval 0 1
hook "rank 1 hangs in set-up, 2 ranks, mpi" 2 mpi 1:@setup 1 1
hook "rank 2 hangs before the end-of-training agreement, 3 ranks, shm" 3 shm 2:@end 2 1
# A rank that hangs after the first step's agreement, before its gradient
# sums, with each point-to-point allreduce (auto picks alltoall on 2-3
# ranks): the others wait in the schedule's rounds, which poll the
# watchdog (one wait loop for every algorithm). The ring's 4 rounds on 3
# ranks always need the victim after its first round, so the line must
# name the gradient sums; rabenseifner and tree may have posted every send
# the others need (they are short on 3 ranks), and then the others finish
# and the victim is named at the next agreement: only the usual check.
sums() {
  local alg=$1 victim=$2 log
  hook "rank $victim hangs before the gradient sums, 3 ranks, mpi, $alg" 3 mpi "$victim:@sums" "$victim" 1 \
    --set runtime.allreduce_algorithm="$alg"
  [ "$alg" = ring ] || return 0
  log=$(ls -t wd-*.log | head -1)
  grep -q "did not arrive at the gradient sums of step 1 " "$log" && ok "$alg: caught inside the allreduce" \
    || bad "$alg: not caught in the gradient sums: $(grep -m1 'error:' "$log")"
}
sums ring 0
sums ring 2
sums rabenseifner 1
sums tree 2
# A checkpoint to resume from, then a rank that hangs before its broadcast.
"$TSR_MPIEXEC" --oversubscribe --bind-to none -n 2 "$TSR_BIN" train digits.ini --set runtime.progress=none \
  --set train.max_steps=20 --set checkpoint.dir=ck --set train.output=first.h5 >first.log 2>&1 \
  || { bad "the run to resume from failed"; cat first.log; }
hook "rank 1 hangs before the checkpoint broadcast, 2 ranks, shm" 2 shm 1:@resume 1 1 \
  --set checkpoint.dir=ck --set checkpoint.resume=auto
# External SIGSTOP at a random moment.
stop "SIGSTOP of rank 0, 2 ranks, shm" 2 shm 0
stop "SIGSTOP of rank 1, 2 ranks, mpi" 2 mpi 1
stop "SIGSTOP of rank 2, 3 ranks, mpi" 3 mpi 2
stop "SIGSTOP of rank 0, 3 ranks, shm" 3 shm 0
echo "watchdog $WD s: seconds from SIGSTOP to every rank gone:$FIGURES"
robust_finish
