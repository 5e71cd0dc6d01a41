# SPDX-License-Identifier: BSD-3-Clause
# Helpers for the end-to-end tests (sourced). ctest sets TSR_BIN, TSR_SRC, TSR_MPIEXEC.
set -u
: "${TSR_BIN:?}" "${TSR_SRC:?}" "${TSR_MPIEXEC:=mpiexec}"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
PY=${TSR_PYTHON:-/usr/bin/python3}   # Debian's interpreter, which has h5py and numpy
WORK=$(mktemp -d "${TMPDIR:-/tmp}/tessera-e2e.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"
FAILS=0
PASSES=0

mpi() { # mpi NP ARGS...: run tessera on NP ranks (killed after TSR_MPI_TIMEOUT s, 120)
  local np=$1; shift
  timeout "${TSR_MPI_TIMEOUT:-120}" "$TSR_MPIEXEC" --oversubscribe --bind-to none -n "$np" "$TSR_BIN" "$@"
}
ok() { PASSES=$((PASSES + 1)); echo "ok: $*"; }
bad() { FAILS=$((FAILS + 1)); echo "FAIL: $*"; }
finish() {
  echo "$PASSES passed, $FAILS failed"
  [ "$FAILS" -eq 0 ]
}

# stop_server: ends the background `tessera serve` whose pid is PID (TERM,
# KILL after 5 s) and reaps it.
PID=
stop_server() {
  if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then
    kill -TERM "$PID"
    for _ in $(seq 50); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$PID" 2>/dev/null
  fi
  [ -n "$PID" ] && wait "$PID" 2>/dev/null
  PID=
}

# same_weights A B: the model files' weights and biases are byte-identical.
same_weights() { # same_weights A B
  $PY - "$1" "$2" <<'PY'
import sys, h5py
def w(p):
    f = h5py.File(p, "r"); g = f["model"]
    return [g[k][n][()].tobytes() for k in sorted(g) for n in ("weight", "bias")]
sys.exit(0 if w(sys.argv[1]) == w(sys.argv[2]) else 1)
PY
}
