#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The running coordinator against hostile clients (docs/HARDENING.md, "A
# route"): thousands of half-sent, silent or dripping connections from one
# address while /health from another must answer within 1 s; JSON bodies
# and query arguments with NUL bytes or invalid UTF-8; uploaded model files
# that declare what they do not hold or read other files; registry ids after
# deletes and restarts; FIFOs where registry files go; and no answer naming
# a server path.
. "$(dirname "$0")/serve_lib.sh"
train_model && ok "trained the digits model" || { bad "training"; finish; exit 1; }
$PY "$HERE/hostile_models.py" digits-model.h5 . || { bad "hostile model files"; finish; exit 1; }
REG=$WORK/reg
start_server "$WORK/run" "$WORK/digits-model.h5" --registry "$REG" --set serve.header_timeout_s=2 \
  || { bad "serve did not start"; finish; exit 1; }
ok "serving on $URL"
JSON=(-H "Content-Type: application/json")
OCTET=(-H "Content-Type: application/octet-stream")

# --- slow and half-sent clients ---------------------------------------------
# slow MODE CONNS CHECK WHAT SECONDS: hostile_http.py holds CONNS
# connections of MODE from 127.0.0.2 for SECONDS while timing /health from
# 127.0.0.1; CHECK, a Python expression over its JSON summary d, must hold.
slow() {
  local mode=$1 conns=$2 check=$3 what=$4 out
  CASES=$((CASES + 1))
  out=$(timeout 120 $PY "$HERE/hostile_http.py" "$PORT" "$mode" "$conns" "$5")
  if $PY -c "import json,sys; d = json.loads(sys.argv[1]); assert $check, d" "$out" 2>/dev/null; then
    ok "$conns $mode connections from 127.0.0.2: $what ($out)"
  else
    bad "$conns $mode connections from 127.0.0.2: not $what: ${out:-the client hung}"
  fi
}
# 6000: more than the old limit of 4096 and the listen backlog together.
for mode in half silent drip; do
  slow $mode 6000 "d['probes'] >= 10 and d['failures'] == 0 and d['max_latency'] < 1.0" \
    "every /health answered within 1 s" 8
done
# The header deadline, below the per-address limit: each of 20 connections
# that never finishes its headers (silent, or one byte a second) is closed
# by the server, then reopened: header_timeout_s is 2, the clients stay 12 s.
for mode in silent drip; do
  slow $mode 20 "d['cut'] >= 20 and d['failures'] == 0" "all cut by the header deadline" 12
done

# --- JSON bodies: NUL bytes and invalid UTF-8 are 400, never cut short ------
row=$($PY -c "import h5py; print(','.join(map(str, h5py.File('data/digits.h5')['X_test'][0])))")
printf '{"inputs":[[%s]]}' "$row" >good.json
req "POST /predict well-formed" 200 '"outputs"' "${JSON[@]}" --data-binary @good.json "$URL/predict"
printf '{"inputs":[[%s]]}\0{"inputs":[[1]]}' "$row" >b1.json
printf '{"inputs":[[%s]]}\0' "$row" >b2.json
printf '{"inputs":[[%s\0]]}' "$row" >b3.json
printf '{"inputs":[[%s]],"x":"\xff"}' "$row" >b4.json
printf '{"x":"\xc0\x80","inputs":[[%s]]}' "$row" >b5.json
printf '{"x":"\xed\xa0\x80","inputs":[[%s]]}' "$row" >b6.json
printf '{"inputs":[[%s]]} \xe2\x82' "$row" >b7.json
for i in 1 2 3; do
  req "POST /predict with a NUL byte ($i)" 400 'NUL byte' "${JSON[@]}" --data-binary @b$i.json "$URL/predict"
done
for i in 4 5 6 7; do
  req "POST /predict with invalid UTF-8 ($i)" 400 'UTF-8' "${JSON[@]}" --data-binary @b$i.json "$URL/predict"
done
req "upload a model" 201 '"id":"digits-v1"' "${OCTET[@]}" --data-binary @digits-model.h5 "$URL/models?name=digits"
printf '{"description":"kept"}' >p0.json
printf '{"description":"cut"}\0{"description":"evil"}' >p1.json
printf '{"description":"a\0b"}' >p2.json
printf '{"description":"\xff"}' >p3.json
printf '{"description":"a\\u0000b"}' >p4.json
req "PATCH a description" 200 '"kept"' -X PATCH "${JSON[@]}" --data-binary @p0.json "$URL/models/digits-v1"
req "PATCH with a NUL after the object" 400 'NUL byte' -X PATCH "${JSON[@]}" --data-binary @p1.json "$URL/models/digits-v1"
req "PATCH with a NUL in a string" 400 'NUL byte' -X PATCH "${JSON[@]}" --data-binary @p2.json "$URL/models/digits-v1"
req "PATCH with invalid UTF-8" 400 'UTF-8' -X PATCH "${JSON[@]}" --data-binary @p3.json "$URL/models/digits-v1"
req "PATCH with an escaped NUL" 400 'NUL' -X PATCH "${JSON[@]}" --data-binary @p4.json "$URL/models/digits-v1"
curl -s "$URL/models/digits-v1" -o body.out && jq_py 'assert d["description"] == "kept", d' \
  && ok "the refused patches changed nothing" || bad "a refused patch changed the model: $(cat body.out)"

# --- query arguments: a %00 or invalid UTF-8 is 400, never cut short --------
req "upload name=a%00b" 400 'NUL' "${OCTET[@]}" --data-binary @digits-model.h5 "$URL/models?name=a%00b"
req "upload name=%ff" 400 'UTF-8' "${OCTET[@]}" --data-binary @digits-model.h5 "$URL/models?name=%ff"
req "list tag=a%00b" 400 'NUL' "$URL/models?tag=a%00b"
req "export format=onnx%00x" 400 'NUL' "$URL/models/digits-v1/export?format=onnx%00x"
req "status since=1%00" 400 'NUL' "$URL/status?since=1%00"
curl -s "$URL/models" -o body.out && jq_py 'assert [m["id"] for m in d["models"]] == ["digits-v1"], d' \
  && ok "no refused upload was registered" || bad "registry after refused uploads: $(cat body.out)"

# --- uploaded model files: checked before anything is allocated -------------
req "upload: 64 x 2^20 declared, nothing stored" 422 'not all stored' "${OCTET[@]}" --data-binary @declared.h5 "$URL/models"
req "upload: 64 x 2^21 declared" 422 'max_model_params' "${OCTET[@]}" --data-binary @huge.h5 "$URL/models"
req "upload: gzip bomb" 422 'max_model_params' "${OCTET[@]}" --data-binary @bomb.h5 "$URL/models"
req "upload: weights read from /etc/passwd" 422 'not all stored' "${OCTET[@]}" --data-binary @external.h5 "$URL/models"
req "upload: external link to a server file" 422 'link' "${OCTET[@]}" --data-binary @elink.h5 "$URL/models"
req "upload: /model a soft link" 422 'link' "${OCTET[@]}" --data-binary @softlink.h5 "$URL/models"
req "upload: 33 layers" 422 'more than 32 layers' "${OCTET[@]}" --data-binary @deep.h5 "$URL/models"
req "upload: cross-entropy with one output" 422 'cross-entropy' "${OCTET[@]}" --data-binary @oneout.h5 "$URL/models"
hwm=$(awk '/VmHWM/ {print $2}' /proc/$PID/status)
[ "${hwm:-999999}" -lt 262144 ] && ok "server peak memory ${hwm} kB (a 64 x 2^20 model would be 256 MiB)" \
  || bad "server peak memory ${hwm} kB"
curl -s "$URL/models" -o body.out && jq_py 'assert len(d["models"]) == 1, d' && [ -z "$(ls -A "$REG" | grep upload)" ] \
  && ok "refused uploads left no entry and no file" || bad "after refused uploads: $(cat body.out) $(ls -a "$REG")"

# --- registry ids are never reused, across restarts too ---------------------
req "upload x" 201 '"id":"x-v1"' "${OCTET[@]}" --data-binary @digits-model.h5 "$URL/models?name=x"
req "delete x-v1" 200 'deleted' -X DELETE "$URL/models/x-v1"
req "upload x after the delete: x-v2" 201 '"id":"x-v2"' "${OCTET[@]}" --data-binary @digits-model.h5 "$URL/models?name=x"
req "delete x-v2" 200 'deleted' -X DELETE "$URL/models/x-v2"
stop_server
start_server "$WORK/run" "$WORK/digits-model.h5" --registry "$REG" || bad "restart"
req "upload x after a restart: x-v3" 201 '"id":"x-v3"' "${OCTET[@]}" --data-binary @digits-model.h5 "$URL/models?name=x"

# --- FIFOs where registry files go: refused at once, left in place ----------
rm -f "$REG/.versions" && mkfifo "$REG/.versions"
req "upload with a FIFO for .versions" 500 'log has the details' "${OCTET[@]}" --data-binary @digits-model.h5 "$URL/models?name=y"
[ -p "$REG/.versions" ] && ok ".versions FIFO left in place" || bad ".versions FIFO replaced"
rm -f "$REG/.versions" "$REG/x-v3.json" && mkfifo "$REG/x-v3.json"
req "GET a model whose metadata is a FIFO" 500 'log has the details' "$URL/models/x-v3"
req "list with a FIFO among the metadata" 200 '"digits-v1"' "$URL/models"
req "PATCH a model whose metadata is a FIFO" 500 'log has the details' -X PATCH "${JSON[@]}" --data-binary @p0.json "$URL/models/x-v3"
[ -p "$REG/x-v3.json" ] && ok "metadata FIFO left in place" || bad "metadata FIFO replaced"
rm -f "$REG/digits-v1.h5" && mkfifo "$REG/digits-v1.h5"
req "export hdf5 of a model file that is a FIFO" 500 'not a regular file' "$URL/models/digits-v1/export?format=hdf5"
req "export onnx of a model file that is a FIFO" 500 'log has the details' "$URL/models/digits-v1/export?format=onnx"

# --- answers never name server paths ----------------------------------------
rm -f "$REG/digits-v1.h5" && head -c 5000 digits-model.h5 >"$REG/digits-v1.h5"
req "export of a damaged model file" 500 'log has the details' "$URL/models/digits-v1/export?format=onnx"
stop_server
echo "not a directory" >"$WORK/regfile"
start_server "$WORK/run" "$WORK/digits-model.h5" --registry "$WORK/regfile" || bad "start with a file as registry"
req "upload into a registry that is a file" 500 'log has the details' "${OCTET[@]}" --data-binary @digits-model.h5 "$URL/models"
req "health after all of it" 200 '"ok"' "$URL/health"
no_server_paths
grep -q 'regfile' serve.err && ok "the server's log has the detail" || bad "the detail is not in the log: $(tail -3 serve.err)"
stop_server
robust_finish
