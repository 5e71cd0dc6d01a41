#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The coordinator's start-up as an attacker or a careless user meets it
# (docs/HARDENING.md): a port another process listens on (tessera serve, a
# training run with [serve], anything), token files others may read or that
# are not files, model files that declare what they do not hold or read
# other files, IPv6 binds and the address file curl and ssh -L use, and a
# FIFO where coordinator.addr goes.
. "$(dirname "$0")/serve_lib.sh"
train_model && ok "trained the digits model" || { bad "training"; finish; exit 1; }
$PY "$HERE/hostile_models.py" digits-model.h5 . || { bad "hostile model files"; finish; exit 1; }

# --- a busy port is an error -------------------------------------------------
start_server run1 digits-model.h5 || { bad "serve did not start"; finish; exit 1; }
hostile "second tessera serve on the same port" 4 "address in use: 127.0.0.1:$PORT" \
  "$TSR_BIN" serve digits-model.h5 --port "$PORT" --run-dir run2
[ ! -e run2/coordinator.addr ] && ok "the refused one wrote no address file" || bad "run2/coordinator.addr written"
mkdir -p reg-empty
hostile "tessera serve REGISTRY_DIR on the same port" 4 "address in use: 127.0.0.1:$PORT" \
  "$TSR_BIN" serve reg-empty --port "$PORT" --run-dir run2
# Training with [serve] on the busy port: every rank stops at set-up with exit 4.
# Each wrapper records its rank's exit, then waits a moment before passing a
# failure on: mpirun kills the other ranks at the first failed exit, which
# under load could land between the other rank's own exit and its record.
rm -f ranks.txt
hostile "training with [serve] on a busy port (2 ranks)" 4 "address in use: 127.0.0.1:$PORT" \
  timeout 120 "$TSR_MPIEXEC" --oversubscribe --bind-to none -n 2 sh -c \
  '"$0" "$@"; rc=$?; echo "exit $rc" >>ranks.txt; [ $rc = 0 ] || sleep 3; exit $rc' "$TSR_BIN" train digits.ini \
  --set train.epochs=1 \
  --set runtime.progress=none --set serve.enabled=true --set serve.port="$PORT" --set train.output=busy.h5
[ "$(grep -c '^exit 4$' ranks.txt 2>/dev/null)" = 2 ] && [ ! -e busy.h5 ] && ok "both ranks exited 4, no model written" \
  || bad "ranks: $(cat ranks.txt 2>/dev/null) $(ls busy.h5 2>/dev/null)"
curl -sf "$URL/health" >/dev/null && ok "the first coordinator still answers" || bad "the first coordinator is gone"
stop_server
# A port held by another program, and one on IPv6.
$PY -c 'import socket,sys,time; s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(); print(s.getsockname()[1], flush=True); time.sleep(120)' >held.txt &
holder=$!
for _ in $(seq 50); do [ -s held.txt ] && break; sleep 0.1; done
hostile "serve on a port another program listens on" 4 "address in use: 127.0.0.1:$(cat held.txt)" \
  "$TSR_BIN" serve digits-model.h5 --port "$(cat held.txt)" --run-dir run2
kill $holder; wait $holder 2>/dev/null
start_server run1 digits-model.h5 --bind ::1 || bad "serve on ::1"
hostile "second tessera serve on [::1] and the same port" 4 "address in use: \[::1\]:$PORT" \
  "$TSR_BIN" serve digits-model.h5 --bind ::1 --port "$PORT" --run-dir run2

# --- IPv6: an address file curl -g and ssh -L take ---------------------------
CASES=$((CASES + 1))
grep -Eq '^\[::1\]:[0-9]+$' run1/coordinator.addr && curl -sgf "http://$ADDR/health" | grep -q ok \
  && ok "--bind ::1: coordinator.addr is $ADDR and curl -g reaches it" || bad "::1: $(cat run1/coordinator.addr)"
stop_server
CASES=$((CASES + 1))
start_server run1 digits-model.h5 --bind '[::1]' && grep -Eq '^\[::1\]:[0-9]+$' run1/coordinator.addr \
  && ok "--bind '[::1]' writes $ADDR" || bad "[::1]: $(cat run1/coordinator.addr)"
stop_server
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >token && chmod 600 token
CASES=$((CASES + 1))
if start_server run1 digits-model.h5 --bind :: --token-file token; then
  AUTH=(-H "Authorization: Bearer $(cat token)")
  curl -sgf "${AUTH[@]}" "http://[::1]:$PORT/status" >/dev/null && curl -sf "${AUTH[@]}" "http://127.0.0.1:$PORT/status" >/dev/null \
    && curl -sf "http://$ADDR/health" >/dev/null \
    && ok "--bind :: with a token: $ADDR, [::1] and 127.0.0.1 all reach it" || bad "--bind ::: $ADDR"
else
  bad "--bind :: with a token did not start"
fi
stop_server
hostile "--bind :: without a token" 2 "token" "$TSR_BIN" serve digits-model.h5 --bind :: --run-dir run2

# --- token files ---------------------------------------------------------------
for mode in 640 604 620 602 660; do
  cp token tok$mode && chmod $mode tok$mode
  hostile "token file mode $mode" 2 "tok$mode: mode 0$mode lets the group or others" \
    "$TSR_BIN" serve digits-model.h5 --token-file tok$mode --run-dir run2
done
mkfifo tokfifo && mkdir tokdir
hostile "token file a FIFO" 2 "tokfifo: a FIFO" "$TSR_BIN" serve digits-model.h5 --token-file tokfifo --run-dir run2
hostile "token file a directory" 2 "tokdir: a directory" "$TSR_BIN" serve digits-model.h5 --token-file tokdir --run-dir run2
hostile "token file /dev/zero" 2 "/dev/zero: a device" "$TSR_BIN" serve digits-model.h5 --token-file /dev/zero --run-dir run2

# --- model files: checked before anything is allocated ------------------------
mkfifo fifo.h5
for cmd in serve export; do
  args=(--run-dir run2)
  [ $cmd = export ] && args=(-o out.onnx)
  hostile "$cmd: 64 x 2^20 declared, nothing stored" 3 "declared.h5: /model/layer_0: declares 64 x 1048576 weights that are not all stored" \
    "$TSR_BIN" $cmd declared.h5 "${args[@]}"
  hostile "$cmd: 64 x 2^21 declared" 3 "huge.h5: .*max_model_params" "$TSR_BIN" $cmd huge.h5 "${args[@]}"
  hostile "$cmd: gzip bomb" 3 "bomb.h5: .*max_model_params" "$TSR_BIN" $cmd bomb.h5 "${args[@]}"
  hostile "$cmd: weights read from /etc/passwd" 3 "external.h5: .*not all stored" "$TSR_BIN" $cmd external.h5 "${args[@]}"
  hostile "$cmd: external link" 3 "elink.h5: .*external link" "$TSR_BIN" $cmd elink.h5 "${args[@]}"
  hostile "$cmd: 33 layers" 3 "deep.h5: more than 32 layers" "$TSR_BIN" $cmd deep.h5 "${args[@]}"
  hostile "$cmd: a FIFO as the model" 3 "fifo.h5 is a FIFO, not a regular file" "$TSR_BIN" $cmd fifo.h5 "${args[@]}"
  hostile "$cmd: /dev/zero as the model" 3 "/dev/zero is a character device, not a regular file" "$TSR_BIN" $cmd /dev/zero "${args[@]}"
done
[ ! -e out.onnx ] && ok "no refused export wrote a file" || bad "out.onnx written"
hostile "serve: serve.max_model_params below the model" 3 "digits-model.h5: .*more than 1000 parameters" \
  "$TSR_BIN" serve digits-model.h5 --set serve.max_model_params=1000 --run-dir run2
hostile "export: --max-params below the model" 3 "digits-model.h5: .*more than 1000 parameters" \
  "$TSR_BIN" export digits-model.h5 --max-params 1000 -o out.onnx
"$TSR_BIN" export digits-model.h5 --max-params 26122 -o ok.onnx >/dev/null 2>&1 && ok "export at exactly the budget" \
  || bad "export --max-params 26122 of a 26122-parameter model"

# --- a FIFO where coordinator.addr goes ----------------------------------------
# Refused (exit 2) and left a FIFO: tsr_file_write_atomic refuses targets
# that are not regular files. Until then the server replaced it and ran on.
CASES=$((CASES + 1))
mkdir -p runfifo && mkfifo runfifo/coordinator.addr
"$TSR_BIN" serve digits-model.h5 --run-dir runfifo >o.txt 2>e.txt &
PID=$!
for _ in $(seq 100); do kill -0 $PID 2>/dev/null && [ -p runfifo/coordinator.addr ] || break; sleep 0.1; done
if kill -0 $PID 2>/dev/null; then
  bad "a FIFO for coordinator.addr: $([ -p runfifo/coordinator.addr ] && echo 'still running after 10 s' || echo 'replaced by a regular file')"
  stop_server
else
  wait $PID; rc=$?; PID=
  [ $rc -eq 2 ] && [ -p runfifo/coordinator.addr ] && [ "$(grep -c 'error:' e.txt)" = 1 ] \
    && ok "a FIFO for coordinator.addr: refused, exit 2, left in place ($(cat e.txt))" \
    || bad "a FIFO for coordinator.addr: exit $rc, $([ -p runfifo/coordinator.addr ] || echo 'replaced, ')$(cat e.txt)"
fi
robust_finish
