#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# sbatch jobs/tasks.sbatch on a private SLURM cluster: 2 ranks through srun
# --mpi=pmix run a task farm in a 1-minute job whose walltime margin (58 s,
# libslurm's end time) comes about 2 s in: dispatching stops, running tasks
# finish, every rank exits 75, the script requeues the job, and the next
# run replays the journal and runs exactly the tasks that are left. Then a
# job whose ranks are signalled (scancel --signal=USR1, as preemption
# does) with a short drain: its running tasks are stopped and run again.
# Last a plain scancel (SIGTERM): the farm stops, the job is not requeued
# (it ends CANCELLED), and a new job on the same journal finishes it.
. "$TSR_SRC/tests/slurm/lib.sh"
slurm_start
export TESSERA=$TSR_BIN
for i in $(seq 80); do echo "sleep 0.1; echo t$i \${SLURM_RESTART_COUNT:-0} >> side.txt"; done > farm.txt

# 1. The walltime margin.
id=$(sbatch --parsable -N1 --ntasks-per-node=2 --cpus-per-task=1 --time=1 --signal=USR1@5 -o wall-%j.out \
     "$TSR_SRC/jobs/tasks.sbatch" farm.txt --walltime-margin 58 --drain 30 --progress 0)
[ -n "$id" ] && ok "sbatch accepted jobs/tasks.sbatch (job $id)" || { bad "sbatch refused jobs/tasks.sbatch"; finish; exit 1; }
log=wall-$id.out
wait_line "$log" 'walltime: [0-9]+ s left, under the margin of 58 s: stopping' 90 "$id" >/dev/null \
  || { bad "job $id never reached its margin"; cat "$log"; }
wait_line "$log" 'exiting with status 75' 90 "$id" >/dev/null || { bad "job $id did not exit 75"; cat "$log"; }
scontrol update JobId="$id" TimeLimit=5   # the requeued run may finish
st=$(wait_job "$id" 180 1)
[ "$st" = COMPLETED ] && [ "$(job_field "$id" ExitCode)" = 0:0 ] \
  && ok "job $id completed after $(job_field "$id" Restarts) requeue(s)" \
  || { bad "job $id: $st exit $(job_field "$id" ExitCode) restarts $(job_field "$id" Restarts)"; cat "$log"; }
grep -q 'stopped with tasks left (exit 75): requeueing job' "$log" && grep -q "job $id run 2: 2 ranks" "$log" \
  && ok "margin -> exit 75 -> requeue -> run 2" || { bad "requeue sequence"; cat "$log"; }
grep -qE 'journal tessera-tasks-[0-9]+/journal: run 2; [0-9]+ succeeded' "$log" \
  && ok "run 2 replayed the journal: $(grep -oE 'run 2; [0-9]+ succeeded' "$log" | head -1)" || { bad "replay line"; cat "$log"; }
[ "$(cut -d' ' -f1 side.txt | sort | uniq -d | wc -l)" = 0 ] && [ "$(cut -d' ' -f1 side.txt | sort -u | wc -l)" = 80 ] \
  && ok "all 80 tasks ran, none twice (drained, not killed)" || { bad "side effects"; sort side.txt | uniq -c | sort -rn | head -3; }
# (under load srun may start the ranks after the margin has passed: then run 1 ran nothing)
echo "measured: run 1 ran $(awk '$2 == 0' side.txt | wc -l) tasks, run 2 $(awk '$2 == 1' side.txt | wc -l)"
"$TSR_BIN" tasks status "tessera-tasks-$id" | grep -q '^80 tasks: 80 succeeded' && ok "the journal: 80 succeeded" \
  || { bad "journal"; "$TSR_BIN" tasks status "tessera-tasks-$id"; }

# 2. A signal to the ranks with a short drain: running tasks are stopped, then run again.
for i in $(seq 12); do echo "{\"id\": \"s$i\", \"cmd\": \"sleep 1.5; echo s$i >> side2.txt\"}"; done > slow.txt
id=$(sbatch --parsable -N1 --ntasks-per-node=2 --cpus-per-task=1 --time=5 -o sig-%j.out \
     "$TSR_SRC/jobs/tasks.sbatch" slow.txt --journal js --drain 0.5 --kill-grace 1 --progress 0)
log=sig-$id.out
wait_line "$log" 'tasks: [0-9]+ tasks .* on 2 ranks' 90 "$id" >/dev/null || { bad "job $id did not start"; cat "$log"; }
sleep 2
scancel --signal=USR1 "$id"
st=$(wait_job "$id" 180 1)
[ "$st" = COMPLETED ] && ok "signalled job $id requeued and completed" || { bad "job $id: $st"; cat "$log"; }
grep -qE 'received signal 10|stop requested by signal 10' "$log" && grep -q 'requeueing job' "$log" \
  && ok "SIGUSR1 -> stop -> requeue" || { bad "signal sequence"; cat "$log"; }
grep -qE 'run 2; [0-9]+ succeeded, 0 failed, 0 skipped, 0 cancelled before; [0-9]+ that were running' "$log" \
  && ok "run 2: $(grep -oE '[0-9]+ that were running' "$log" | head -1) when the farm stopped, run again" \
  || { bad "interrupted tasks"; cat "$log"; }
[ "$(sort side2.txt | uniq -d | wc -l)" = 0 ] && [ "$(sort -u side2.txt | wc -l)" = 12 ] \
  && ok "all 12 side effects once (the stopped tasks were killed before writing theirs)" \
  || { bad "side2"; sort side2.txt | uniq -c; }

# 3. scancel: SIGTERM to the batch shell and the ranks; stop, no requeue.
for i in $(seq 12); do echo "sleep 1; echo c$i >> side3.txt"; done > cancel.txt
id=$(sbatch --parsable -N1 --ntasks-per-node=2 --cpus-per-task=1 --time=5 -o can-%j.out \
     "$TSR_SRC/jobs/tasks.sbatch" cancel.txt --journal jc --drain 0.5 --kill-grace 1 --progress 0)
log=can-$id.out
wait_line "$log" 'tasks: [0-9]+ tasks .* on 2 ranks' 90 "$id" >/dev/null || { bad "job $id did not start"; cat "$log"; }
sleep 2
scancel "$id"
st=$(wait_job "$id" 60 0)
[ "$st" = CANCELLED ] && [ "$(job_field "$id" Restarts)" = 0 ] && grep -q 'not requeueing job' "$log" \
  && ok "scancel: the farm stopped (exit 75), job $st, not requeued" || { bad "scancel: job $st"; cat "$log"; }
id=$(sbatch --parsable -N1 --ntasks-per-node=2 --cpus-per-task=1 --time=5 -o can2-%j.out \
     "$TSR_SRC/jobs/tasks.sbatch" cancel.txt --journal jc --progress 0)
st=$(wait_job "$id" 180 0)
[ "$st" = COMPLETED ] && [ "$(sort -u side3.txt | wc -l)" = 12 ] \
  && ok "a new job on the cancelled one's journal finished the farm: $(sort -u side3.txt | wc -l) tasks" \
  || { bad "after scancel: job $st"; cat "can2-$id.out"; }
finish
