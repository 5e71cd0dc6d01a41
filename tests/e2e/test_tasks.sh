#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# tessera tasks run as a user drives it: real processes on 1 and 2 MPI
# ranks. Sweeps and ids, exit codes and the summary, every task run once
# across ranks, priorities and dependencies (serialized through one GPU
# slot), retries and timeouts, core binding and CUDA_VISIBLE_DEVICES,
# a SIGUSR1 to a rank (exit 75) and a restart on the journal that runs
# exactly what was left, status from the journal.
. "$(dirname "$0")/lib.sh"

count() { grep -c -- "$2" "$1" 2>/dev/null || echo 0; }

# 1. One rank, a mixed file: plain lines, a sweep, JSON, a failure, a missing command.
cat > mixed.txt <<'EOF'
# comment
echo hello
echo sweep {1..3} {a,b}
sh -c 'echo oops >&2; exit 3'
no_such_command_tessera
{"id": "j1", "cmd": "echo J1 $GREETING", "env": {"GREETING": "hi"}}
{"id": "j2", "cmd": "echo J2", "after": "4"}
{"id": "p-{n}", "cmd": "echo p{n}", "each": {"n": "1..4"}}
EOF
mpi 1 tasks run mixed.txt --journal jm --progress 0 > m.out 2>&1
rc=$?
[ $rc -eq 7 ] && ok "a failed task: exit 7" || { bad "mixed: exit $rc, expected 7"; cat m.out; }
grep -q 'tasks: done after .* 15 tasks: 12 succeeded, 2 failed, 1 skipped' m.out \
  && ok "summary counts" || { bad "summary"; cat m.out; }
grep -q '4: exit 3 after 1 attempt' m.out && grep -q '| oops' m.out && grep -q 'j2 (dependency 4 failed)' m.out \
  && ok "summary names the failure, its stderr and the skipped dependent" || { bad "summary details"; cat m.out; }
grep -q '5: exit 127' m.out && grep -q 'not found' jm/output/5.err \
  && ok "a missing command fails with 127, the shell's message in its stderr" || { bad "127"; cat m.out; }
[ "$(cat jm/output/3.6.out)" = "sweep 3 b" ] && [ "$(cat jm/output/j1.out)" = "J1 hi" ] && [ -s jm/output/p-4.out ] \
  && ok "sweep ids (3.6 = sweep 3 b), JSON env, each" || bad "outputs: $(cat jm/output/3.6.out jm/output/j1.out)"
"$TSR_BIN" tasks status jm > st.out && grep -q '15 tasks: 12 succeeded, 2 failed, 1 skipped' st.out \
  && ok "status from the journal" || { bad "status"; cat st.out; }
"$TSR_BIN" tasks status jm --state failed > sf.out && [ "$(grep -c '	failed	' sf.out)" = 2 ] \
  && ok "status --state failed lists 2" || { bad "status --state"; cat sf.out; }

# 2. Two ranks: every task once, both ranks used, rank 0 dispatching.
for i in $(seq 40); do echo "sleep 0.05; echo \$TESSERA_TASK_ID \$TESSERA_TASK_RANK >> side2.txt"; done > two.txt
mpi 2 tasks run two.txt --progress 0 > t2.out 2>&1 && ok "2 ranks: exit 0" || { bad "2 ranks failed"; cat t2.out; }
[ "$(cut -d' ' -f1 side2.txt | sort | uniq | wc -l)" = 40 ] && [ "$(wc -l < side2.txt)" = 40 ] \
  && ok "40 tasks, each run once" || bad "side effects: $(wc -l < side2.txt) lines"
[ "$(cut -d' ' -f2 side2.txt | sort -u | tr '\n' ' ')" = "0 1 " ] && ok "both ranks ran tasks" \
  || bad "ranks used: $(cut -d' ' -f2 side2.txt | sort -u | tr '\n' ' ')"

# 3. Priorities and dependencies: one GPU slot runs one task at a time, in order.
cat > prio.txt <<'EOF'
{"id": "low", "cmd": "echo low >> order.txt", "gpus": 1, "priority": -5}
{"id": "mid", "cmd": "echo mid >> order.txt", "gpus": 1}
{"id": "high", "cmd": "echo high >> order.txt", "gpus": 1, "priority": 10}
{"id": "after-low", "cmd": "echo after-low >> order.txt", "gpus": 1, "priority": 100, "after": "low"}
{"id": "mid2", "cmd": "echo mid2 >> order.txt", "gpus": 1}
EOF
mpi 1 tasks run prio.txt --gpus-per-rank 1 --progress 0 > p.out 2>&1
[ "$(tr '\n' ' ' < order.txt)" = "high mid mid2 low after-low " ] \
  && ok "priority order, equal priorities in file order, a dependency after its task" \
  || { bad "order: $(tr '\n' ' ' < order.txt)"; cat p.out; }

# 4. Retries with backoff, and a timeout (SIGTERM ignored: SIGKILL after the grace).
cat > retry.txt <<'EOF'
{"id": "flaky", "cmd": "echo $TESSERA_TASK_ATTEMPT >> tries.txt; [ $TESSERA_TASK_ATTEMPT -ge 3 ]", "retries": 4, "backoff": [0.05, 2]}
{"id": "slow", "cmd": "trap '' TERM; sleep 30", "timeout": 0.5, "retries": 1}
EOF
mpi 1 tasks run retry.txt --journal jr --kill-grace 0.5 --progress 0 > r.out 2>&1
rc=$?
[ "$(tr '\n' ' ' < tries.txt)" = "1 2 3 " ] && ok "retried until it succeeded: attempts 1 2 3" \
  || bad "tries: $(tr '\n' ' ' < tries.txt)"
[ $rc -eq 7 ] && grep -q 'slow: timed out after 2 attempts' r.out \
  && ok "timeout counted as a failure, retried once, then failed" || { bad "timeout: exit $rc"; cat r.out; }

# 5. Binding and GPUs: two ranks that see the same four GPUs split them.
cat > res.txt <<'EOF'
{"id": "one", "cmd": "grep Cpus_allowed_list /proc/self/status > one.cpus; echo $OMP_NUM_THREADS > one.omp"}
{"id": "nogpu", "cmd": "echo \"[$CUDA_VISIBLE_DEVICES]\" > nogpu.txt"}
{"id": "g{i}", "cmd": "echo $TESSERA_TASK_RANK $CUDA_VISIBLE_DEVICES >> gpus.txt; sleep 0.3", "gpus": 1, "each": {"i": "1..6"}}
{"id": "gg", "cmd": "echo $CUDA_VISIBLE_DEVICES > gg.txt", "gpus": 2}
EOF
CUDA_VISIBLE_DEVICES=0,1,2,3 mpi 2 tasks run res.txt --progress 0 > g.out 2>&1 && ok "GPU tasks ran" \
  || { bad "GPU tasks"; cat g.out; }
cpus=$(sed 's/.*:\s*//' one.cpus)
[[ $cpus =~ ^[0-9]+$ ]] && [ "$(cat one.omp)" = 1 ] && ok "a 1-core task is bound to one CPU ($cpus), OMP_NUM_THREADS=1" \
  || bad "binding: '$cpus' omp $(cat one.omp)"
[ "$(cat nogpu.txt)" = "[]" ] && ok "a task without GPUs sees none" || bad "nogpu: $(cat nogpu.txt)"
awk '($1 == 0 && $2 != 0 && $2 != 1) || ($1 == 1 && $2 != 2 && $2 != 3) {bad=1} END {exit bad}' gpus.txt \
  && [ "$(wc -l < gpus.txt)" = 6 ] && ok "rank 0 got GPUs 0,1 and rank 1 got 2,3" || { bad "gpus"; cat gpus.txt; }
[[ $(cat gg.txt) =~ ^(0,1|2,3)$ ]] && ok "a 2-GPU task gets both of its rank's ($(cat gg.txt))" || bad "gg: $(cat gg.txt)"

# 6. A signal to one rank stops the farm (75); a restart runs exactly what is left.
{ echo '{"id": "pid{r}", "cmd": "echo $PPID > rank$TESSERA_TASK_RANK.pid", "priority": 9, "each": {"r": "1..2"}}'
  for i in $(seq 30); do echo "{\"id\": \"s$i\", \"cmd\": \"sleep 0.3; echo s$i >> side6.txt\"}"; done; } > stop.txt
mpi 2 tasks run stop.txt --journal js --drain 30 --progress 0 > s1.out 2>&1 &
job=$!
for _ in $(seq 300); do [ -s rank1.pid ] && [ -f side6.txt ] && [ "$(wc -l < side6.txt)" -ge 4 ] && break; sleep 0.1; done
kill -USR1 "$(cat rank1.pid)"
wait $job
rc=$?
[ $rc -eq 75 ] && grep -q 'rank 1 received signal 10' s1.out && grep -q 'exiting with status 75' s1.out \
  && ok "SIGUSR1 to rank 1: every rank stops, exit 75" || { bad "stop: exit $rc"; cat s1.out; }
before=$(wc -l < side6.txt)
"$TSR_BIN" tasks status js > s6.out; grep -q ' 0 started and not finished' s6.out \
  && ok "journal after the stop: nothing left running ($(head -1 s6.out | cut -c1-60))" || { bad "status"; cat s6.out; }
mpi 2 tasks run stop.txt --journal js --progress 0 > s2.out 2>&1 && ok "restart: exit 0" || { bad "restart"; cat s2.out; }
[ "$(sort side6.txt | uniq -d | wc -l)" = 0 ] && [ "$(sort -u side6.txt | wc -l)" = 30 ] \
  && ok "all 30 side effects, none twice ($before before the stop)" || { bad "side effects"; sort side6.txt | uniq -c | sort -rn | head -3; }
grep -q "run 2; $((before + 2)) succeeded" s2.out && ok "the restart replayed $((before + 2)) successes" \
  || { bad "replay line"; head -2 s2.out; }
finish
