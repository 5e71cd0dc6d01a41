# SPDX-License-Identifier: BSD-3-Clause
# A private single-node SLURM cluster on loopback for the tests (Slurm 22.05).
#
#   . tests/slurm/cluster.sh
#   cluster_start DIR [CPUS]   # munged, slurmctld -D, slurmd -D; exports SLURM_CONF
#   ...sbatch / srun / tessera submit...
#   cluster_stop DIR           # cancels jobs, stops every daemon it started by PID
#
# or as a program: bash tests/slurm/cluster.sh start|stop DIR [CPUS]. A guard
# process stops the cluster when the shell that started it ends (for the
# program form, set CLUSTER_OWNER to the PID that owns the cluster).
# Everything lives under DIR: munge key and socket, slurm.conf, mpi.conf, state,
# spool, logs, PMIx client directories. Daemons run as root (SlurmUser=root).
# Needs root and the Debian packages slurm-wlm, slurm-client and munge.

cluster_log() { echo "cluster: $*" >&2; }

# A TCP port nothing listens on, from a range the kernel does not hand out.
cluster_free_port() {
  local p
  for _ in $(seq 200); do
    p=$((20000 + RANDOM % 10000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return 0; fi
  done
  return 1
}

# True while PID is a live process (a zombie answers kill -0, so read its state).
cluster_alive() {
  local st
  [ -r "/proc/$1/stat" ] || return 1
  st=$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)
  [ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

cluster_wait_gone() { # PID SECONDS
  local i
  for i in $(seq $(($2 * 10))); do cluster_alive "$1" || return 0; sleep 0.1; done
  return 1
}

cluster_write_conf() { # DIR CPUS CTLD_PORT SLURMD_PORT FIRST_JOB_ID
  local d=$1 cpus=$2 host gres="" gres_types=""
  host=$(hostname)
  # CLUSTER_GPUS=N: N pretend GPUs (character devices that exist everywhere),
  # enough for SLURM to allocate them and set CUDA_VISIBLE_DEVICES per task.
  if [ "${CLUSTER_GPUS:-0}" -gt 0 ]; then
    gres=" Gres=gpu:${CLUSTER_GPUS}" gres_types="GresTypes=gpu
"
    local i files=()
    for i in $(seq 0 $((CLUSTER_GPUS - 1))); do files+=("/dev/tty$i"); done
    printf 'NodeName=tsrnode Name=gpu File=%s\n' "$(IFS=,; echo "${files[*]}")" > "$d/gres.conf"
  fi
  cat > "$d/slurm.conf" <<CONF
ClusterName=tsrtest
FirstJobId=$5
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$3
SlurmdPort=$4
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$d/munge/munge.socket.2,cred_expire=5
StateSaveLocation=$d/state
SlurmdSpoolDir=$d/spool
SlurmctldPidFile=$d/slurmctld.pid
SlurmdPidFile=$d/slurmd.pid
SlurmctldLogFile=$d/slurmctld.log
SlurmdLogFile=$d/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=pmix
SwitchType=switch/none
SchedulerType=sched/backfill
SchedulerParameters=bf_interval=1,sched_interval=1
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SlurmdParameters=config_overrides
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
JobRequeue=1
EnforcePartLimits=ALL
ReturnToService=2
MinJobAge=600
KillWait=5
InactiveLimit=0
MessageTimeout=10
${gres_types}NodeName=tsrnode NodeHostname=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=4000 State=UNKNOWN$gres
PartitionName=debug Nodes=tsrnode Default=YES MaxTime=INFINITE State=UP
CONF
  printf 'PMIxCliTmpDirBase=%s\n' "$d/pmix" > "$d/mpi.conf"
}

cluster_start() { # DIR [CPUS]
  local d=$1 cpus=${2:-8} i
  d=$(cd "$d" && pwd)
  mkdir -p "$d/munge" "$d/state" "$d/spool" "$d/pmix"
  chmod 711 "$d" "$d/munge"          # munge's socket directory must be world-executable
  chmod 1777 "$d/pmix"
  dd if=/dev/urandom of="$d/munge/munge.key" bs=1024 count=1 status=none
  chmod 400 "$d/munge/munge.key"
  munged --force --socket="$d/munge/munge.socket.2" --key-file="$d/munge/munge.key" \
    --pid-file="$d/munge/munged.pid" --log-file="$d/munge/munged.log" --seed-file="$d/munge/munged.seed" \
    || { cluster_log "munged did not start"; return 1; }
  # Job ids unique to this cluster: Open MPI names its shared-memory segments
  # after the SLURM job and step, so two clusters on one host (ctest -j) must
  # never both run "job 1" at once.
  cluster_write_conf "$d" "$cpus" "$(cluster_free_port)" "$(cluster_free_port)" $((1000 + RANDOM * 30 + RANDOM % 30))
  export SLURM_CONF=$d/slurm.conf
  slurmctld -D -i -f "$SLURM_CONF" >"$d/slurmctld.out" 2>&1 &
  echo $! > "$d/slurmctld.pid.own"
  slurmd -D -N tsrnode -f "$SLURM_CONF" >"$d/slurmd.out" 2>&1 &
  echo $! > "$d/slurmd.pid.own"
  # A guard in its own session stops the cluster if the caller dies without
  # doing so (killed by a test timeout): daemons never outlive their test.
  # (Started through a subshell that exits at once, so that it is no child of
  # the caller: ctest's timeout kills the caller's descendants by parent id.)
  (setsid bash "${BASH_SOURCE[0]}" guard "$d" "${CLUSTER_OWNER:-$$}" </dev/null >/dev/null 2>&1 &)
  # Ready when the node reports idle (about a second).
  for i in $(seq 300); do
    if sinfo -h -N -o %t 2>/dev/null | grep -qx idle; then return 0; fi
    cluster_alive "$(cat "$d/slurmctld.pid.own")" && cluster_alive "$(cat "$d/slurmd.pid.own")" || break
    sleep 0.1
  done
  cluster_log "the node did not become idle; logs follow"
  tail -n 20 "$d"/slurmctld.log "$d"/slurmd.log "$d"/*.out >&2 2>/dev/null
  cluster_stop "$d"
  return 1
}

cluster_stop() { # DIR
  local d=$1 pid name
  [ -f "$d/slurm.conf" ] || return 0
  export SLURM_CONF=$d/slurm.conf
  # Jobs first: slurmstepd can outlive the daemons.
  if [ -f "$d/slurmctld.pid.own" ] && cluster_alive "$(cat "$d/slurmctld.pid.own")"; then
    scancel --full --quiet --user=root 2>/dev/null
    for _ in $(seq 50); do
      [ -z "$(squeue -h -o %i 2>/dev/null)" ] && break
      sleep 0.1
    done
  fi
  for name in slurmd slurmctld; do
    [ -f "$d/$name.pid.own" ] || continue
    pid=$(cat "$d/$name.pid.own")
    if cluster_alive "$pid"; then
      kill -TERM "$pid" 2>/dev/null
      cluster_wait_gone "$pid" 10 || { cluster_log "$name $pid ignored SIGTERM"; kill -KILL "$pid" 2>/dev/null; }
    fi
    wait "$pid" 2>/dev/null
    rm -f "$d/$name.pid.own"
  done
  # Any slurmstepd left for this cluster's spool directory.
  for pid in $(pgrep -x slurmstepd 2>/dev/null); do
    if { tr '\0' '\n' < "/proc/$pid/environ"; } 2>/dev/null | grep -qx "SLURM_CONF=$d/slurm.conf"; then
      kill -KILL "$pid" 2>/dev/null
    fi
  done
  if [ -f "$d/munge/munged.pid" ]; then
    pid=$(cat "$d/munge/munged.pid")
    if cluster_alive "$pid"; then
      kill -TERM "$pid" 2>/dev/null
      cluster_wait_gone "$pid" 10 || kill -KILL "$pid" 2>/dev/null
    fi
    rm -f "$d/munge/munged.pid"
  fi
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  case "${1:-}" in
    start) CLUSTER_OWNER=${CLUSTER_OWNER:-$PPID} cluster_start "$2" "${3:-8}" && echo "export SLURM_CONF=$2/slurm.conf" ;;
    stop) cluster_stop "$2" ;;
    guard) # DIR PID: waits for PID to end, then stops the cluster in DIR
      cd / || exit 1
      while cluster_alive "$3"; do sleep 1; done
      cluster_stop "$2" ;;
    *) echo "usage: cluster.sh start|stop DIR [CPUS]" >&2; exit 2 ;;
  esac
fi
