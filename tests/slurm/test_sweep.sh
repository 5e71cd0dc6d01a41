#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# sbatch jobs/sweep.sbatch on a private SLURM cluster: one allocation of 2
# ranks runs a 6-trial sweep (groups of 1 rank through srun --mpi=pmix); a
# signal after the first finished trial (as preemption or --signal=USR1@N)
# checkpoints the trials under way, exits 75, requeues the job, and the
# second run keeps the finished trials and completes the rest.
. "$TSR_SRC/tests/slurm/lib.sh"
cp "$TSR_SRC/examples/digits.ini" . && mkdir -p data && cp "$TSR_SRC/examples/data/digits.h5" data/
slurm_start
export TESSERA=$TSR_BIN

id=$(sbatch --parsable -N1 --ntasks-per-node=2 --time=5 -o sweep-%j.out "$TSR_SRC/jobs/sweep.sbatch" digits.ini \
     --grid optim.lr=0.01,0.03,0.1 --grid train.batch_size=16,32 --set train.epochs=8 --set runtime.progress=none \
     --set checkpoint.every_steps=20 -o res)
[ -n "$id" ] && ok "sbatch accepted jobs/sweep.sbatch (job $id)" || bad "sbatch refused jobs/sweep.sbatch"
log=sweep-$id.out
for _ in $(seq 1200); do grep -q ',done,' res/trials.csv 2>/dev/null && break; sleep 0.1; done
scancel --signal=USR1 "$id"
wait_line "$log" 'sweep: stopped; trials under way checkpointed' 60 "$id" >/dev/null
grep ',done,' res/trials.csv >before.txt
st=$(wait_job "$id" 240 1)
[ "$st" = COMPLETED ] && [ "$(job_field "$id" ExitCode)" = 0:0 ] && [ "$(job_field "$id" Restarts)" = 1 ] \
  && ok "signalled sweep job $id requeued once and completed" || { bad "job $id: $st restarts $(job_field "$id" Restarts)"; cat "$log"; }
grep -q 'sweep checkpointed (exit 75): requeueing job' "$log" && grep -q 'run 2: 2 ranks' "$log" \
  && grep -q "resuming from res/trials.json: $(wc -l <before.txt) of 6 trials finished" "$log" \
  && ok "signal -> exit 75 -> requeue -> run 2 resumed with $(wc -l <before.txt) trials finished" \
  || { bad "requeue sequence"; cat "$log"; }
[ "$(grep -c ',done,' res/trials.csv)" -eq 6 ] && grep -cx -F -f before.txt res/trials.csv | grep -qx "$(wc -l <before.txt)" \
  && ok "every trial done; those finished before the requeue kept" || { bad "trials after requeue"; cat res/trials.csv; }
grep -q 'registered as sweep-v1' "$log" && ok "best model registered" || bad "no registration line"
finish
