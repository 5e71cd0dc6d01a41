#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# tessera submit and tessera jobs through libslurm on a private cluster: a
# job built from the config runs to completion; bad requests fail with
# SLURM's own reason and exit 5 (scheduler refused or unreachable), bad usage
# with exit 2.
. "$TSR_SRC/tests/slurm/lib.sh"
cp "$TSR_SRC/examples/digits.ini" . && mkdir -p data && cp "$TSR_SRC/examples/data/digits.h5" data/
export TESSERA_STATE_DIR=$WORK/state
if ! "$TSR_BIN" submit digits.ini --print-script >script.sh 2>err.txt; then
  grep -q 'built without libslurm' err.txt && { echo "SKIP: built without libslurm"; exit 0; }
fi
slurm_start

# The generated script: srun through PMIx, requeue on 75, resume when restarted.
grep -qx "TESSERA_MPI='pmix'" script.sh && grep -q '^srun --mpi="$TESSERA_MPI" ' script.sh \
  && grep -q 'scontrol requeue' script.sh && grep -q 'resume=(--resume auto)' script.sh \
  && bash -n script.sh && ok "--print-script: a valid batch script" || { bad "--print-script"; cat script.sh; }

out=$("$TSR_BIN" submit digits.ini --ntasks-per-node 2 --time 5 --set runtime.progress=lines --set train.epochs=3 \
      --set train.output=sub.h5 2>&1)
rc=$?
id=$(echo "$out" | sed -n 's/^Submitted batch job \([0-9]*\)$/\1/p')
[ $rc -eq 0 ] && [ -n "$id" ] && ok "submitted job $id through libslurm" || { bad "submit failed (rc $rc)"; echo "$out"; }
[ "$(job_field "$id" NumTasks)" = 2 ] && [ "$(job_field "$id" TimeLimit)" = 00:05:00 ] \
  && [ "$(job_field "$id" Requeue)" = 1 ] && ok "job $id: 2 tasks, 5 minutes, requeue allowed" \
  || { bad "job $id fields"; scontrol show job "$id"; }
st=$(wait_job "$id" 120)
[ "$st" = COMPLETED ] && grep -q 'done: test accuracy .* 2 ranks' "tessera-$id.out" && [ -s sub.h5 ] \
  && ok "submitted job completed and wrote its model" || { bad "job $id: $st"; cat "tessera-$id.out"; }
"$TSR_BIN" jobs >jobs.txt 2>&1 && grep -qE "^$id +COMPLETED +0 +0 " jobs.txt && grep -q "$WORK/digits.ini" jobs.txt \
  && ok "tessera jobs lists it as COMPLETED" || { bad "tessera jobs"; cat jobs.txt; }
"$TSR_BIN" jobs "$id" 67000000 >jobs.txt 2>&1 && grep -qE "^67000000 +UNKNOWN" jobs.txt \
  && ok "tessera jobs ID: an unknown id is UNKNOWN" || { bad "tessera jobs ID"; cat jobs.txt; }

# Hostile strings reach SLURM exactly and run nowhere: sbatch reads the
# printed script's #SBATCH lines back to the same job name and time, and a
# config path with a tab and a newline stays one line in the list of jobs.
hname='n "q" $(touch pwned) `touch pwned`; #h '"'s'"' \e'
"$TSR_BIN" submit digits.ini --job-name "$hname" --time 5 --print-script >hs.sh
hid=$(sbatch --parsable --hold hs.sh)
[ -n "$hid" ] && [ "$(squeue -h -j "$hid" -o %j)" = "$hname" ] && [ "$(job_field "$hid" TimeLimit)" = 00:05:00 ] \
  && ok "sbatch of the printed script: the hostile job name and the time arrive exactly" \
  || { bad "sbatch of a hostile script: '$(squeue -h -j "$hid" -o %j)'"; head -12 hs.sh; }
[ -n "$hid" ] && scancel "$hid"
hcfg=$(printf 'tab\there\nnl.ini')
cp digits.ini "$hcfg"
hid=$("$TSR_BIN" submit "$hcfg" --parsable --job-name "$hname" --time 5 2>err.txt)
[ -n "$hid" ] && [ "$(squeue -h -j "$hid" -o %j)" = "$hname" ] && ok "libslurm: the same name arrives exactly" \
  || { bad "libslurm hostile submit"; cat err.txt; }
[ -n "$hid" ] && scancel "$hid"
"$TSR_BIN" jobs --all >jobs.txt 2>&1
[ "$(grep -c "^$hid " jobs.txt)" = 1 ] && grep -q 'tab\\there\\nnl.ini' jobs.txt && [ "$(wc -l <jobs.txt)" -le 5 ] \
  && ok "tessera jobs: the odd config path is one escaped line" || { bad "jobs list"; cat jobs.txt; }
[ ! -e pwned ] && ok "no string was executed" || bad "a string was executed"
uid=$("$TSR_BIN" submit digits.ini --parsable --time INFINITE 2>err.txt)
[ -n "$uid" ] && [ "$(job_field "$uid" TimeLimit)" = UNLIMITED ] && ok "libslurm: --time INFINITE arrives as no limit" \
  || { bad "--time INFINITE: job '$uid' $(job_field "$uid" TimeLimit)"; cat err.txt; }
[ -n "$uid" ] && scancel "$uid"

expect() { # expect CODE REGEX DESCRIPTION -- ARGS...
  local code=$1 re=$2 what=$3; shift 4
  "$@" >out.txt 2>&1
  local rc=$?
  if [ $rc -eq "$code" ] && grep -qE "$re" out.txt; then ok "$what: exit $rc"; else bad "$what: exit $rc"; cat out.txt; fi
}
expect 5 "SLURM refused the job: Invalid partition name specified" "unknown partition" -- \
  "$TSR_BIN" submit digits.ini --partition nope
expect 5 "SLURM refused the job: .*(node configuration|Node count)" "more nodes than the cluster has" -- \
  "$TSR_BIN" submit digits.ini --nodes 4
expect 5 "SLURM refused the job: Requested node configuration is not available" "more ranks per node than CPUs" -- \
  "$TSR_BIN" submit digits.ini --ntasks-per-node 100
expect 5 "SLURM refused the job: Invalid generic resource" "GPUs on a cluster without any" -- \
  "$TSR_BIN" submit digits.ini --gpus-per-task 1
expect 2 "time '1h' \(--time\): expected" "malformed --time" -- "$TSR_BIN" submit digits.ini --time 1h
expect 2 "unknown key|nearest" "unknown config key" -- "$TSR_BIN" submit digits.ini --set submit.nodez=2
expect 2 "no CONFIG" "no config" -- "$TSR_BIN" submit
# No controller listening (a copy of the config on a dead port, short timeout).
sed -e 's/^SlurmctldPort=.*/SlurmctldPort=9/' -e 's/^MessageTimeout=.*/MessageTimeout=2/' "$SLURM_CONF" >dead.conf
expect 5 "Unable to contact slurm controller" "controller down" -- env SLURM_CONF="$PWD/dead.conf" "$TSR_BIN" submit digits.ini
expect 5 "Unable to contact slurm controller" "controller down (jobs)" -- env SLURM_CONF="$PWD/dead.conf" "$TSR_BIN" jobs
expect 5 "SLURM is not reachable from here: cannot read its configuration /nonexistent/slurm.conf" "no SLURM configuration" -- \
  env SLURM_CONF=/nonexistent/slurm.conf "$TSR_BIN" submit digits.ini
[ -z "$(squeue -h -o %i)" ] && ok "nothing left in the queue" || { bad "jobs left"; squeue; }
finish
