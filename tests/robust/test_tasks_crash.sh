#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Crash safety of tessera tasks: a 2-rank farm is killed with SIGKILL at a
# random moment, alternately its dispatcher (rank 0) and a worker (rank
# 1), and started again on its journal, KILLS times; then it runs to the
# end. Each task appends one line "ID RUN" to a file. Checked: every task's
# line is there, every task ends succeeded, and no task the journal had
# recorded as succeeded before a kill ran again in a later run (tasks that
# were running at a kill may run again: at-least-once).
# TASKS_CRASH_KILLS (6) and TASKS_CRASH_TASKS (240) size it; the benchmark
# script runs it with 20 kills.
. "$(dirname "$0")/lib.sh"
KILLS=${TASKS_CRASH_KILLS:-6}
N=${TASKS_CRASH_TASKS:-240}
for i in $(seq "$N"); do
  echo "{\"id\": \"t$i\", \"cmd\": \"sleep 0.0$((i % 7 + 1)); echo t$i \$RUN >> side.txt\"}"
done > crash.txt
export OMPI_MCA_orte_abort_timeout=1

# rank_pid MPIEXEC_PID RANK: the pid of a rank (mpiexec forks the ranks itself).
rank_pid() {
  local p
  for p in $(pgrep -P "$1"); do
    tr '\0' '\n' < "/proc/$p/environ" 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=$2" && { echo "$p"; return; }
  done
}

run=0
for k in $(seq "$KILLS"); do
  run=$((run + 1))
  RUN=$run "$TSR_MPIEXEC" --oversubscribe --bind-to none -n 2 "$TSR_BIN" tasks run crash.txt --journal jc \
    --progress 0 > "run$run.out" 2>&1 &
  mp=$!
  target=$(( k % 2 ))                       # 1, 0, 1, 0, ...: a worker, then the dispatcher
  delay=$(awk -v s="$RANDOM" 'BEGIN { srand(s); printf "%.2f", 0.8 + rand() * 2.0 }')
  sleep "$delay"
  pid=$(rank_pid "$mp" "$target")
  if [ -n "$pid" ]; then kill -KILL "$pid"; else echo "note: run $run ended before its kill"; fi
  wait "$mp"
  # What the journal says succeeded so far must never run again. A kill
  # before the farm made its journal (a loaded machine starts slowly)
  # leaves none: nothing was recorded, nothing is owed.
  if [ -e jc/journal ]; then
    "$TSR_BIN" tasks status jc --state succeeded > "ok$run.txt" 2> "st$run.err" || { bad "status after kill $k"; cat "st$run.err"; }
  else
    : > "ok$run.txt"; echo "note: run $run was killed before its journal existed"
  fi
  cut -f1 "ok$run.txt" | grep '^t' | sort > "done$run.txt"
  echo "kill $k: rank $target after ${delay}s; $(wc -l < "done$run.txt") tasks recorded succeeded"
done
run=$((run + 1))
RUN=$run "$TSR_MPIEXEC" --oversubscribe --bind-to none -n 2 "$TSR_BIN" tasks run crash.txt --journal jc --progress 0 \
  > "run$run.out" 2>&1 && ok "the last run finished" || { bad "last run"; tail -5 "run$run.out"; }
"$TSR_BIN" tasks status jc | grep -q "^$N tasks: $N succeeded" && ok "the journal: all $N succeeded" \
  || { bad "final status"; "$TSR_BIN" tasks status jc; }
[ "$(cut -d' ' -f1 side.txt | sort -u | wc -l)" = "$N" ] && ok "every task's side effect is there" \
  || bad "side effects of $(cut -d' ' -f1 side.txt | sort -u | wc -l) tasks"
again=0
for r in $(seq "$KILLS"); do
  # lines written by runs after r, of tasks recorded succeeded by the end of run r
  n=$(awk -v r="$r" '$2 > r {print $1}' side.txt | sort | comm -12 - "done$r.txt" | wc -l)
  again=$((again + n))
done
[ "$again" = 0 ] && ok "no task recorded succeeded ran again after any of $KILLS kills" \
  || bad "$again runs of tasks already recorded succeeded"
dups=$(cut -d' ' -f1 side.txt | sort | uniq -d | wc -l)
echo "measured: $KILLS kills, $N tasks, $dups tasks ran more than once (running or unrecorded at a kill)"
finish
