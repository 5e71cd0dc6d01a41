# SPDX-License-Identifier: BSD-3-Clause
# Helpers for the SLURM tests (sourced): the e2e helpers, plus a private
# single-node cluster started in $WORK/cluster and stopped on exit.
. "$TSR_SRC/tests/e2e/lib.sh"
. "$TSR_SRC/tests/slurm/cluster.sh"
CL=$WORK/cluster
slurm_cleanup() {
  cluster_stop "$CL"
  if [ -n "${TSR_KEEP_WORK:-}" ]; then echo "kept $WORK"; else cd / && rm -rf "$WORK"; fi
}
trap slurm_cleanup EXIT

# Starts the cluster, or skips the test (exit 0 with a note) where SLURM is not installed.
slurm_start() {
  local t
  for t in munged slurmctld slurmd sbatch scontrol; do
    if ! command -v "$t" >/dev/null; then
      echo "SKIP: $t not installed (scripts/install-deps.sh installs slurm-wlm, slurm-client, munge)"
      exit 0
    fi
  done
  if [ "$(id -u)" -ne 0 ]; then echo "SKIP: the test cluster runs its daemons as root"; exit 0; fi
  mkdir -p "$CL"
  t=$(date +%s.%N)
  cluster_start "$CL" "${1:-8}" || { echo "FAIL: the test cluster did not start"; exit 1; }
  echo "cluster up in $(secs_since "$t") s (SLURM_CONF=$SLURM_CONF)"
}

# The value of FIELD (JobState, ExitCode, Restarts, ...) of job ID.
job_field() { # ID FIELD
  scontrol -o show job "$1" 2>/dev/null | tr ' ' '\n' | sed -n "s/^$2=//p" | head -1
}

# Waits until job ID is in a final state (and, with MIN_RESTARTS, was
# requeued at least that often); prints the state. polls every 0.2 s.
wait_job() { # ID TIMEOUT [MIN_RESTARTS]
  local id=$1 limit=$2 want=${3:-0} st r end
  end=$(($(date +%s) + limit))
  while [ "$(date +%s)" -lt "$end" ]; do
    st=$(job_field "$id" JobState)
    r=$(job_field "$id" Restarts)
    case "$st" in
      COMPLETED|FAILED|CANCELLED|TIMEOUT|NODE_FAIL|OUT_OF_MEMORY|BOOT_FAIL|DEADLINE)
        if [ "${r:-0}" -ge "$want" ]; then echo "$st"; return 0; fi
        sleep 1  # a final state with too few requeues: look once more, then give up
        [ "$(job_field "$id" JobState)" = "$st" ] && { echo "$st(restarts ${r:-0})"; return 1; } ;;
    esac
    sleep 0.2
  done
  echo "TIMEOUT($st)"
  return 1
}

# Waits until FILE has a line matching REGEX; prints the Unix time it was
# seen. Bash builtins only (no process per poll), so a busy machine delays it
# little. With JOBID, gives up once that job has ended.
wait_line() { # FILE REGEX TIMEOUT [JOBID]
  local fd sfd line end next=0 st
  end=$((${EPOCHREALTIME%.*} + $3))
  until [ -e "$1" ]; do
    [ "${EPOCHREALTIME%.*}" -lt "$end" ] || return 1
    sleep 0.1
  done
  exec {fd}<"$1" {sfd}<> <(:)
  while [ "${EPOCHREALTIME%.*}" -lt "$end" ]; do
    if IFS= read -r -u "$fd" line; then
      if [[ $line =~ $2 ]]; then exec {fd}<&- {sfd}<&-; echo "$EPOCHREALTIME"; return 0; fi
    elif [ -n "${4:-}" ] && [ "${EPOCHREALTIME%.*}" -ge "$next" ]; then
      next=$((${EPOCHREALTIME%.*} + 1))
      st=$(job_field "$4" JobState)
      case "$st" in
        COMPLETED|FAILED|CANCELLED|TIMEOUT|NODE_FAIL|OUT_OF_MEMORY|BOOT_FAIL|DEADLINE)
          # read what the job wrote last, then give up
          while IFS= read -r -u "$fd" line; do
            if [[ $line =~ $2 ]]; then exec {fd}<&- {sfd}<&-; echo "$EPOCHREALTIME"; return 0; fi
          done
          break ;;
      esac
    else
      read -r -t 0.02 -u "$sfd" line   # sleeps 20 ms without a process
    fi
  done
  exec {fd}<&- {sfd}<&-
  return 1
}

secs_since() { awk -v a="$1" -v b="${2:-$(date +%s.%N)}" 'BEGIN { printf "%.2f", b - a }'; }

same_weights() { # A B: the model files' datasets are byte-identical
  $PY - "$1" "$2" <<'PY'
import sys, h5py
def w(p):
    out = {}
    with h5py.File(p, "r") as f:
        f["model"].visititems(lambda n, o: out.__setitem__(n, o[()].tobytes()) if isinstance(o, h5py.Dataset) else None)
    return out
a, b = w(sys.argv[1]), w(sys.argv[2])
sys.exit(0 if a and a == b else 1)
PY
}
