# SPDX-License-Identifier: BSD-3-Clause
# Helpers for the coordinator's hostile cases (sourced by test_serve_*.sh):
# lib.sh, a trained model, one `tessera serve` at a time, and `req`, which
# plays one hostile HTTP request and keeps its answer for the path check.
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd) # before lib.sh moves into the work directory
. "$HERE/lib.sh"
trap 'stop_server; rm -rf "$WORK"' EXIT

# start_server RUN_DIR ARGS...: `tessera serve ARGS --run-dir RUN_DIR`, waits
# for its address file; URL is http://host:port from it. 1 if it did not start.
start_server() {
  local run=$1; shift
  mkdir -p "$run"
  rm -f "$run/coordinator.addr"
  "$TSR_BIN" serve "$@" --run-dir "$run" >serve.out 2>serve.err &
  PID=$!
  for _ in $(seq 100); do
    [ -s "$run/coordinator.addr" ] && break
    kill -0 "$PID" 2>/dev/null || break
    sleep 0.1
  done
  ADDR=$(head -1 "$run/coordinator.addr" 2>/dev/null)
  URL=http://$ADDR
  PORT=${ADDR##*:}
  [ -n "$ADDR" ] || { cat serve.err; return 1; }
}

# The digits model every case starts from.
train_model() {
  cp "$TSR_SRC/examples/digits.ini" . && mkdir -p data && cp "$TSR_SRC/examples/data/digits.h5" data/
  mpi 1 train digits.ini --set train.epochs=2 --set runtime.progress=none --set checkpoint.final=false \
    --set train.register=false >train.out 2>&1 && [ -f digits-model.h5 ] || { cat train.out; return 1; }
}

# req NAME CODE PATTERN CURL_ARGS...: one hostile request. It must be
# answered within 30 s with HTTP CODE; an error (>= 400) must be a JSON
# {"error": "..."} matching PATTERN (grep -E; "" for any). The body is kept
# in bodies/ for the check that no answer names a server path.
REQS=0
req() {
  local name=$1 want=$2 pat=$3 code
  shift 3
  CASES=$((CASES + 1))
  REQS=$((REQS + 1))
  mkdir -p bodies
  code=$(curl -sg -o "bodies/$REQS" -w '%{http_code}' --max-time 30 "$@")
  cp "bodies/$REQS" body.out
  if [ "$code" = 000 ]; then bad "$name: no answer within 30 s"; return 1; fi
  if [ "$code" != "$want" ]; then bad "$name: HTTP $code, expected $want: $(head -c 300 body.out)"; return 1; fi
  if [ "$want" -ge 400 ] && ! $PY -c 'import json,sys; d = json.load(open("body.out")); assert d["error"]' 2>/dev/null; then
    bad "$name: HTTP $code without a JSON error: $(head -c 300 body.out)"
    return 1
  fi
  if [ -n "$pat" ] && ! grep -Eq -- "$pat" body.out; then bad "$name: answer lacks '$pat': $(head -c 300 body.out)"; return 1; fi
  ok "$name ($code $(head -c 160 body.out))"
}
jq_py() { $PY -c "import json,sys; d = json.load(open('body.out')); $1"; }

# no_server_paths: no kept answer names the work directory (registry, run_dir, model files all lie in it).
no_server_paths() {
  CASES=$((CASES + 1))
  local hits
  hits=$(grep -l -F "$WORK" bodies/* 2>/dev/null)
  [ -z "$hits" ] && ok "none of $REQS answers names a server path" \
    || bad "answers name server paths: $(for f in $hits; do head -c 200 "$f"; echo; done)"
}
