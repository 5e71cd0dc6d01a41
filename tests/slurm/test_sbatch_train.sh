#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# sbatch jobs/train.sbatch on a private single-node SLURM cluster: 2 ranks
# through srun --mpi=pmix train the digits model; the job reads its SLURM
# facts and walltime (libslurm); jobs/gpu.sbatch gives each rank its own
# (pretend) GPU; outside SLURM, SLURM settings are ignored with one line.
. "$TSR_SRC/tests/slurm/lib.sh"
cp "$TSR_SRC/examples/digits.ini" . && mkdir -p data && cp "$TSR_SRC/examples/data/digits.h5" data/
CLUSTER_GPUS=2 slurm_start
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

# gpu.sbatch: one rank per GPU; SLURM gives each its own (pretend) device.
# These GRES are not CUDA devices: with the default runtime.device=cuda the
# job stops at start-up with one line naming the key (exit 2); with
# TESSERA_DEVICE=auto it trains on the CPU and says so.
real_gpus=$(nvidia-smi -L 2>/dev/null | grep -c GPU)
if [ "${real_gpus:-0}" -lt 2 ]; then
  id=$(sbatch --parsable -N1 --ntasks-per-node=2 --cpus-per-task=1 -o gpu-%j.out "$TSR_SRC/jobs/gpu.sbatch" digits.ini \
       --set train.epochs=1 --set runtime.progress=none --set train.output=gpu-model.h5 --set checkpoint.dir=gpu-ck)
  st=$(wait_job "$id" 120)
  [ "$st" = FAILED ] && [ "$(job_field "$id" ExitCode)" = 2:0 ] && grep -q 'error: \[runtime\] device = cuda' "gpu-$id.out" \
    && [ ! -e gpu-model.h5 ] && ok "gpu.sbatch without CUDA devices: exit 2, one line naming runtime.device" \
    || { bad "gpu.sbatch without CUDA devices: $st $(job_field "$id" ExitCode)"; cat "gpu-$id.out"; }
fi
id=$(TESSERA_DEVICE=auto sbatch --parsable -N1 --ntasks-per-node=2 --cpus-per-task=1 -o gpu-%j.out \
     "$TSR_SRC/jobs/gpu.sbatch" digits.ini --set train.epochs=3 --set runtime.progress=none \
     --set train.output=gpu-model.h5 --set checkpoint.dir=gpu-ck)
st=$(wait_job "$id" 120)
[ "$st" = COMPLETED ] && grep -q '2 ranks, 1 GPU each' "gpu-$id.out" && grep -q 'done: .* 2 ranks' "gpu-$id.out" \
  && { [ "${real_gpus:-0}" -ge 2 ] || grep -q 'training on the CPU' "gpu-$id.out"; } \
  && [[ "$(job_field "$id" TresPerTask)" == *gpu:1* ]] && ok "gpu.sbatch TESSERA_DEVICE=auto: 2 ranks, a GPU each" \
  || { bad "gpu.sbatch: $st $(job_field "$id" TresPerTask)"; cat "gpu-$id.out"; }

# Outside SLURM: an explicit SLURM setting is ignored and said so once; the defaults say nothing.
(unset SLURM_JOB_ID SLURM_JOBID; mpi 1 train digits.ini --set train.epochs=1 --set runtime.progress=none \
  --set runtime.walltime_margin_seconds=30 --set submit.partition=x --set checkpoint.final=false) >out.txt 2>&1
note=$(grep 'not running under SLURM (no SLURM_JOB_ID): ignoring ' out.txt)
[ "$(printf '%s\n' "$note" | grep -c .)" = 1 ] && [[ "$note" == *runtime.walltime_margin_seconds* ]] \
  && [[ "$note" == *submit.partition* ]] \
  && ok "outside SLURM: SLURM settings ignored, said once" || { bad "outside-SLURM note"; cat out.txt; }
(unset SLURM_JOB_ID SLURM_JOBID; mpi 1 train digits.ini --set train.epochs=1 --set runtime.progress=none \
  --set checkpoint.final=false) >out.txt 2>&1
grep -q 'done:' out.txt && ! grep -q 'SLURM' out.txt && ok "outside SLURM, defaults: silent" \
  || { bad "outside SLURM with defaults"; cat out.txt; }
finish
