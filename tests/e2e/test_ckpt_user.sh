#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The user-model example (examples/ckpt_user.c: 1-D heat diffusion on 3 MPI
# ranks, one checkpoint directory per rank, written through the public
# checkpoint API): a run killed part-way (SIGKILL on rank 1) and resumed
# ends with exactly the field of an uninterrupted run, also when the ranks
# must agree on an older step because some rank's newer files are damaged
# or missing.
. "$(dirname "$0")/lib.sh"
: "${TSR_BUILD:?}"
EX="$TSR_BUILD/examples/tessera_ckpt_user"
[ -x "$EX" ] || { bad "$EX not built"; finish; exit 1; }

run3() { # run3 ARGS...: the example on 3 ranks
  timeout 120 "$TSR_MPIEXEC" --oversubscribe --bind-to none -n 3 "$EX" "$@"
}
result() { grep -E '^(final sum|checksum): ' "$1"; }
args=(--steps 2000 --every 100 --cells 2048)

# The reference: never interrupted.
run3 "${args[@]}" --dir ref >ref.txt 2>&1 || { bad "uninterrupted run"; cat ref.txt; }
want=$(result ref.txt)
[ "$(wc -l <<<"$want")" -eq 2 ] && ok "uninterrupted: $(tr '\n' ' ' <<<"$want")" || { bad "no result lines"; cat ref.txt; }

# killed DIR STEP: a run that rank 1 kills with SIGKILL after STEP.
killed() {
  run3 "${args[@]}" --dir "$1" --kill-at "$2" >"$1.kill.txt" 2>&1
  local rc=$?
  if [ $rc -ne 0 ] && grep -q 'killing myself after step' "$1.kill.txt" && ! result "$1.kill.txt" >/dev/null; then
    ok "killed at step $2 (exit $rc)"
  else
    bad "kill at $2: exit $rc"; cat "$1.kill.txt"
  fi
}
# resumed DIR STEP WHAT: --resume must pick STEP and end with the reference result.
resumed() {
  run3 "${args[@]}" --dir "$1" --resume >"$1.resume.txt" 2>&1 || { bad "$3: resume run failed"; cat "$1.resume.txt"; return; }
  local got
  got=$(result "$1.resume.txt")
  if grep -q "^$2" "$1.resume.txt" && [ "$got" = "$want" ]; then
    ok "$3: $(grep -m1 "^$2" "$1.resume.txt" | cut -c1-40), result identical"
  else
    bad "$3"; cat "$1.resume.txt"; echo "want: $want"
  fi
}

# newest_common DIR: the newest step every rank-<r> directory has a file of
# (files appear by rename, so a file that exists is complete).
newest_common() {
  local r min=-1 s
  for r in 0 1 2; do
    s=$(ls "$1/rank-$r" 2>/dev/null | sed -n 's/^ckpt-0*\([0-9][0-9]*\)\.h5$/\1/p' | sort -n | tail -1)
    [ -n "$s" ] || { echo -1; return; }
    { [ "$min" -lt 0 ] || [ "$s" -lt "$min" ]; } && min=$s
  done
  echo "$min"
}

# Killed between checkpoints. Rank 1's write of step 1200 may still have been
# in flight when it died (the writer thread dies with it), so the ranks agree
# on 1200 or 1100: whatever every rank committed.
killed k 1234
n=$(ls k/rank-*/ckpt-0000001100.h5 2>/dev/null | wc -l)
[ "$n" -eq 3 ] && ok "every rank wrote its own files" || { bad "per-rank files: $n"; ls -R k; }
common=$(newest_common k)
resumed k "resumed from step $common " "resume after SIGKILL"

# The ranks agree on a step all of them can restore. A run that stopped at
# 1234 left 1000, 1100 and 1200 on every rank; then rank 2's newest file is
# damaged (so the MIN of the newest verified steps is 1100), and rank 1 has
# no 1100 (so they go below it, to 1000).
run3 --steps 1234 --every 100 --cells 2048 --dir a >a.stop.txt 2>&1 || { bad "run to 1234"; cat a.stop.txt; }
truncate -s 1000 a/rank-2/ckpt-0000001200.h5
rm a/rank-1/ckpt-0000001100.h5
resumed a "resumed from step 1000 " "agreement on an older common step"
grep -q 'skipping a/rank-2/ckpt-0000001200.h5' a.resume.txt && ok "damaged file reported" \
  || { bad "damaged file not reported"; cat a.resume.txt; }

# Killed right after starting a checkpoint write (rank 1's writer dies mid-write
# or not); a temporary file it left is removed on resume.
killed w 1300
common=$(newest_common w)
resumed w "resumed from step $common " "kill during an asynchronous write"
ls -a w/rank-1 | grep -q '\.tmp\.' && bad "temporary file left after resume" || ok "no temporary file left"

# Nothing common (rank 0 has no checkpoints at all): start over, same result.
killed z 1234
rm -f z/rank-0/ckpt-*.h5
resumed z "starting at step 0 (no checkpoint common" "resume with no common checkpoint"

finish
