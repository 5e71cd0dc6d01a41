#!/usr/bin/env bash
# sbatch jobs/train.sbatch on a private single-node SLURM cluster: 2 ranks
# through srun --mpi=pmix train the digits model; the job reads its SLURM
# facts and walltime (libslurm); outside SLURM, SLURM settings are ignored
# with one line.
. "$TSR_SRC/tests/slurm/lib.sh"
cp "$TSR_SRC/examples/digits.ini" . && mkdir -p data && cp "$TSR_SRC/examples/data/digits.h5" data/
slurm_start
export TESSERA=$TSR_BIN

id=$(sbatch --parsable -N1 --ntasks-per-node=2 --time=5 -o train-%j.out "$TSR_SRC/jobs/train.sbatch" digits.ini \
     --set runtime.progress=lines --set train.output=digits-model.h5)
[ -n "$id" ] && ok "sbatch accepted jobs/train.sbatch (job $id)" || bad "sbatch refused jobs/train.sbatch"
st=$(wait_job "$id" 120)
log=train-$id.out
[ "$st" = COMPLETED ] && [ "$(job_field "$id" ExitCode)" = 0:0 ] && ok "job $id completed, exit 0" \
  || { bad "job $id: $st exit $(job_field "$id" ExitCode)"; cat "$log"; }
grep -q 'done: test accuracy .* 2 ranks' "$log" && ok "2 ranks trained" || { bad "no done line"; cat "$log"; }
grep -qE "SLURM job $id step 0 \(run 1\) on tsrnode, 2 tasks on this node; walltime left [0-9]+ s" "$log" \
  && ok "the job knows its SLURM facts and walltime" || { bad "SLURM facts line"; cat "$log"; }
$PY -c 'import h5py,sys; f=h5py.File("digits-model.h5"); sys.exit(0 if f.attrs["world_size"] in (b"2","2",2) else 1)' \
  && ok "model file written by 2 ranks" || bad "model file missing or wrong"
grep -qi 'warning\|error' "$log" && { bad "warnings in the job log"; cat "$log"; } || ok "clean log"

# Outside SLURM: an explicit SLURM setting is ignored and said so once; the defaults say nothing.
(unset SLURM_JOB_ID SLURM_JOBID; mpi 1 train digits.ini --set train.epochs=1 --set runtime.progress=none \
  --set runtime.walltime_margin_seconds=30 --set submit.partition=x --set checkpoint.final=false) >out.txt 2>&1
[ "$(grep -c 'not running under SLURM (no SLURM_JOB_ID): ignoring runtime.walltime_margin_seconds, submit.partition' out.txt)" = 1 ] \
  && ok "outside SLURM: SLURM settings ignored, said once" || { bad "outside-SLURM note"; cat out.txt; }
(unset SLURM_JOB_ID SLURM_JOBID; mpi 1 train digits.ini --set train.epochs=1 --set runtime.progress=none \
  --set checkpoint.final=false) >out.txt 2>&1
grep -q 'done:' out.txt && ! grep -q 'SLURM' out.txt && ok "outside SLURM, defaults: silent" \
  || { bad "outside SLURM with defaults"; cat out.txt; }
finish
