#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Preemption and walltime on a private SLURM cluster. jobs/train.sbatch is
# signalled (scancel --signal=USR1, as preemption or --signal=USR1@N would),
# checkpoints, exits 75, requeues itself and resumes; another job runs into
# its walltime margin (libslurm end time) and does the same. Both end with
# weights byte-identical to an uninterrupted run. Prints the time from
# requeue to resumed training and the cost of the margin checkpoint.
. "$TSR_SRC/tests/slurm/lib.sh"
cp "$TSR_SRC/examples/digits.ini" . && mkdir -p data && cp "$TSR_SRC/examples/data/digits.h5" data/
common=(--set model.hidden=512,512 --set train.epochs=500 --set runtime.progress=lines)

mpi 2 train digits.ini "${common[@]}" --set train.output=ref.h5 --set checkpoint.dir=ref-ck >ref.txt 2>&1 \
  && ok "uninterrupted run" || { bad "uninterrupted run failed"; cat ref.txt; }
slurm_start
export TESSERA=$TSR_BIN

# 1. A signal to the ranks (preemption, scancel --signal, --signal=USR1@N).
id=$(sbatch --parsable -N1 --ntasks-per-node=2 --time=5 -o sig-%j.out "$TSR_SRC/jobs/train.sbatch" digits.ini \
     "${common[@]}" --set train.output=sig.h5 --set checkpoint.dir=sig-ck)
log=sig-$id.out
# As training starts (the handlers are in place), so that on a loaded machine,
# where scancel itself can take seconds to start, the signal still lands in time.
wait_line "$log" 'training data/digits.h5' 120 "$id" >/dev/null || { bad "job $id did not start training"; cat "$log"; finish; exit 1; }
t_sig=$EPOCHREALTIME
scancel --signal=USR1 "$id"
t_75=$(wait_line "$log" 'exiting with status 75' 60 "$id")
t_resumed=$(wait_line "$log" 'resumed from' 120 "$id")
t_step=$(wait_line "$log" 'SLURM job .*\(run 2\)' 60 "$id")
st=$(wait_job "$id" 120 1)
[ "$st" = COMPLETED ] && [ "$(job_field "$id" ExitCode)" = 0:0 ] && [ "$(job_field "$id" Restarts)" = 1 ] \
  && ok "signalled job $id requeued once and completed" || { bad "job $id: $st restarts $(job_field "$id" Restarts)"; cat "$log"; }
grep -q 'stop requested by signal 10 at step' "$log" && grep -q 'exiting with status 75' "$log" \
  && grep -q 'requeueing job' "$log" && grep -q 'run 2: 2 ranks' "$log" \
  && ok "signal -> checkpoint -> exit 75 -> requeue -> run 2" || { bad "requeue sequence"; cat "$log"; }
same_weights ref.h5 sig.h5 && ok "signalled and requeued: weights byte-identical to the uninterrupted run" \
  || { bad "weights differ after requeue"; grep -v 'epoch [0-9]*/' "$log"; }
t_req=$(sed -n 's/.*requeueing job [0-9]* at //p' "$log" | head -1)
t_run2=$(sed -n 's/.*run 2: .* at //p' "$log" | head -1)
if [ -n "$t_req" ] && [ -n "$t_run2" ] && [ -n "$t_resumed" ]; then
  echo "measured: scancel --signal to checkpoint written $(secs_since "$t_sig" "$t_75") s, to srun's exit" \
       "$(secs_since "$t_sig" "$t_req") s; requeue to run 2 start $(secs_since "$t_req" "$t_run2") s" \
       "(cred_expire=5 s here, 120 s by default); requeue to checkpoint loaded $(secs_since "$t_req" "$t_resumed") s," \
       "to the first step $(secs_since "$t_req" "$t_step") s"
fi

# 2. The walltime: a 1-minute job with a 58 s margin stops about 2 s after it
# starts (at its first step on a slow machine); its limit is then raised
# (scontrol update, as a user would) so that the requeued run can finish.
# --signal=USR1@5 replaces the script's @180, which a 1-minute job receives
# at once: arriving before a rank's main() has installed its handler (seen
# in CI under load), it kills the rank instead of stopping it, which is no
# test of the margin.
id=$(sbatch --parsable -N1 --ntasks-per-node=2 --time=1 --signal=USR1@5 -o wall-%j.out \
     "$TSR_SRC/jobs/train.sbatch" digits.ini \
     "${common[@]}" --set train.output=wall.h5 --set checkpoint.dir=wall-ck --set runtime.walltime_margin_seconds=58)
log=wall-$id.out
t_margin=$(wait_line "$log" 'walltime: [0-9]+ s left, under the margin of 58 s: checkpointing and stopping' 60 "$id")
t_ck=$(wait_line "$log" 'exiting with status 75' 60 "$id")
# Raise the limit for the requeued run. On a loaded machine scontrol may land
# after the next run started; that run then stops at its margin too (more
# requeues, each making progress), which the checks below allow.
scontrol update JobId="$id" TimeLimit=5
st=$(wait_job "$id" 180 1)
[ "$st" = COMPLETED ] && [ "$(job_field "$id" ExitCode)" = 0:0 ] \
  && ok "walltime job $id completed after $(job_field "$id" Restarts) requeue(s)" \
  || { bad "walltime job $id: $st restarts $(job_field "$id" Restarts)"; cat "$log"; }
[ -n "$t_margin" ] && grep -q 'exiting with status 75' "$log" && grep -q 'resumed from' "$log" \
  && ok "walltime margin -> checkpoint -> exit 75 -> requeue -> resume" || { bad "walltime sequence"; cat "$log"; }
n=$(job_field "$id" Restarts)
# A run may also be stopped by the job's --signal=USR1@180, which a 1-minute
# job receives at once when SLURM is slow to start it. Both ways end in one
# "stop requested by signal" line (the margin raises SIGUSR1's flag itself):
# one per requeue, the margin's at least once, every requeued run resumed.
[ "$(grep -c 'stop requested by signal' "$log")" = "$n" ] &&
  [ "$(grep -c 'walltime: .* under the margin' "$log")" -ge 1 ] && [ "$(grep -c 'resumed from' "$log")" = "$n" ] \
  && ok "one stop line per stopped run ($n, the margin's at least once), each resumed" \
  || { bad "margin message count"; grep -E 'walltime|stop requested|resumed' "$log"; }
same_weights ref.h5 wall.h5 && ok "walltime-stopped and requeued: weights byte-identical" \
  || { bad "weights differ after walltime requeue"; grep -v 'epoch [0-9]*/' "$log"; }
t_req=$(sed -n 's/.*requeueing job [0-9]* at //p' "$log" | head -1)
# Times are when this test saw each line: coarse on a loaded machine.
[ -n "$t_margin" ] && [ -n "$t_req" ] && [ -n "$t_ck" ] \
  && echo "measured: walltime-margin stop request to checkpoint written $(secs_since "$t_margin" "$t_ck") s," \
          "to srun's exit (every rank gone) $(secs_since "$t_margin" "$t_req") s"
grep -v 'epoch [0-9]*/' "$log"

# 3. A plain scancel: SIGTERM to every rank (then SIGKILL after KillWait, 5 s
# here): a checkpoint, exit 75, the job ends CANCELLED (scancel means it),
# and --resume auto continues from that checkpoint.
id=$(sbatch --parsable -N1 --ntasks-per-node=2 --time=5 -o cancel-%j.out "$TSR_SRC/jobs/train.sbatch" digits.ini \
     "${common[@]}" --set train.output=cancel.h5 --set checkpoint.dir=cancel-ck)
log=cancel-$id.out
wait_line "$log" 'training data/digits.h5' 120 "$id" >/dev/null || { bad "job $id did not start training"; cat "$log"; }
scancel "$id"
st=$(wait_job "$id" 60 0)
[ "$st" = CANCELLED ] && [ "$(job_field "$id" Restarts)" = 0 ] && grep -q 'stop requested by signal 15 at step' "$log" \
  && grep -q 'exiting with status 75' "$log" && grep -q 'not requeueing' "$log" \
  && "$TSR_BIN" ckpt verify cancel-ck/*.h5 >/dev/null \
  && ok "scancel: SIGTERM -> checkpoint that verifies -> exit 75, job $st" || { bad "scancel: job $st"; cat "$log"; }
# Nearly the whole run is left to train here: more than mpi's 120 s on a loaded machine.
TSR_MPI_TIMEOUT=500 mpi 2 train digits.ini "${common[@]}" --set train.output=cancel.h5 --set checkpoint.dir=cancel-ck --resume auto \
  >cancel-resume.txt 2>&1 && grep -q 'resumed from cancel-ck/ckpt-' cancel-resume.txt && same_weights ref.h5 cancel.h5 \
  && ok "the cancelled job resumed by hand ends byte-identical" || { bad "cancelled job's resume"; tail -5 cancel-resume.txt; }
finish
