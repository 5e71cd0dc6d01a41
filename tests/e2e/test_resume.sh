#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Fault tolerance end to end: a rank killed with SIGKILL at a random step
# (during or right after an asynchronous checkpoint write), then
# --resume auto, ends with weights byte-identical to an uninterrupted run.
. "$(dirname "$0")/lib.sh"
cp "$TSR_SRC/examples/digits.ini" . && mkdir -p data && cp "$TSR_SRC/examples/data/digits.h5" data/
common=(--set train.epochs=6 --set runtime.progress=none --set checkpoint.every_steps=25 --set checkpoint.keep=2)
mpi 2 train digits.ini "${common[@]}" --set train.output=ref.h5 --set checkpoint.dir=ref-ckpt >/dev/null \
  && ok "uninterrupted run" || bad "uninterrupted run failed"

steps=$((6 * 44))
for trial in 1 2 3; do
  # A random step, and sometimes exactly a checkpoint step (kill right after the async write began).
  kill_step=$(( (RANDOM % (steps - 30)) + 10 ))
  [ $trial -eq 2 ] && kill_step=50
  kill_rank=$((RANDOM % 2))
  rm -rf ck out.h5
  TSR_FAULT_KILL="$kill_rank:$kill_step" mpi 2 train digits.ini "${common[@]}" --set checkpoint.dir=ck \
      --set train.output=out.h5 >kill.txt 2>&1
  rc=$?
  if [ $rc -eq 0 ] || [ -e out.h5 ]; then bad "trial $trial: the killed run did not fail (rc $rc)"; continue; fi
  ls ck >/dev/null 2>&1 || mkdir -p ck
  mpi 2 train digits.ini "${common[@]}" --set checkpoint.dir=ck --set train.output=out.h5 --resume auto >res.txt 2>&1
  rc=$?
  if [ $rc -ne 0 ]; then bad "trial $trial: resume failed (rc $rc)"; cat res.txt; continue; fi
  grep -E 'resumed from|no usable checkpoint' res.txt | head -1
  if same_weights ref.h5 out.h5; then
    ok "trial $trial: rank $kill_rank killed after step $kill_step, resumed, weights byte-identical"
  else
    bad "trial $trial: weights differ after resume (killed rank $kill_rank at step $kill_step)"
  fi
  ls -a ck | grep -q '\.tmp\.' && bad "trial $trial: temporary file left after resume" || true
done

# A stale temporary file from a killed writer is removed and never loaded.
mkdir -p ck2 && echo junk > ck2/.ckpt-0000000999.h5.tmp.999999
mpi 2 train digits.ini "${common[@]}" --set checkpoint.dir=ck2 --set train.output=s.h5 --resume auto >st.txt 2>&1 \
  && [ ! -e ck2/.ckpt-0000000999.h5.tmp.999999 ] && grep -q 'removed 1 temporary file' st.txt \
  && ok "stale temp file removed" || { bad "stale temp file"; cat st.txt; }

# Resuming with another world size is allowed and says so.
mpi 1 train digits.ini "${common[@]}" --set checkpoint.dir=ck --set train.output=w1.h5 --set train.epochs=7 \
  --resume auto >ws.txt 2>&1 && grep -q 'not bit-identical' ws.txt && ok "world-size change resumes with a warning" \
  || { bad "world-size change"; cat ws.txt; }
finish
