#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The coordinator as a user meets it: train the digits model, `tessera serve`
# it on a free port with a bearer token, and talk to it with curl. Every
# route, every bad input (each a 4xx with a JSON error while the server keeps
# serving), Prometheus' own checker on /metrics, the exported ONNX checked by
# Debian's onnx package and evaluated from its initializers with numpy
# against /predict, the registry, `tessera export`, and shutdown by PID.
. "$(dirname "$0")/lib.sh"
trap 'stop_server; rm -rf "$WORK"' EXIT

# start_server ARGS...: runs `tessera serve ARGS` and waits for its address file.
start_server() {
  rm -f run/coordinator.addr
  "$TSR_BIN" serve "$@" >serve.out 2>serve.err &
  PID=$!
  for _ in $(seq 100); do
    [ -s run/coordinator.addr ] && break
    kill -0 "$PID" 2>/dev/null || break
    sleep 0.1
  done
  URL=http://$(head -1 run/coordinator.addr 2>/dev/null)
}

# hit CODE DESC CURL_ARGS...: the answer's code must be CODE; 4xx answers must
# be JSON {"error": "..."}. The body is left in body.out, headers in hdr.out.
hit() {
  local want=$1 desc=$2 code
  shift 2
  code=$(curl -s -o body.out -D hdr.out -w '%{http_code}' --max-time 30 "$@")
  if [ "$code" != "$want" ]; then
    bad "$desc: HTTP $code, expected $want: $(head -c 300 body.out)"
    return 1
  fi
  if [ "$want" -ge 400 ] && ! $PY -c 'import json; d = json.load(open("body.out")); assert isinstance(d["error"], str) and d["error"]' 2>/dev/null; then
    bad "$desc: HTTP $code without a JSON error: $(head -c 300 body.out)"
    return 1
  fi
  ok "$desc ($code)"
}
jq_py() { $PY -c "import json,sys; d = json.load(open('body.out')); $1"; }

cp "$TSR_SRC/examples/digits.ini" . && mkdir -p data run && cp "$TSR_SRC/examples/data/digits.h5" data/
mpi 1 train digits.ini --set train.epochs=8 --set runtime.progress=none >train.out 2>&1 \
  && [ -f digits-model.h5 ] && ok "trained the digits model" || { cat train.out; bad "training"; finish; exit 1; }

# Inputs: test rows of the digits data as JSON.
$PY - <<'PY'
import h5py, json
f = h5py.File("data/digits.h5", "r")
X = f["X_test"][:]
json.dump({"inputs": X[:1].tolist()}, open("one.json", "w"))
json.dump({"inputs": X[:20].tolist()}, open("twenty.json", "w"))
for i in range(24):
    json.dump({"inputs": X[20 + i:21 + i].tolist()}, open(f"row{i}.json", "w"))
json.dump({"inputs": [X[0].tolist()[:10]]}, open("narrow.json", "w"))
open("nan.json", "w").write('{"inputs": [[' + ",".join(["NaN"] + ["0"] * 63) + "]]}")
open("deep.json", "w").write('{"inputs": ' + "[" * 100 + "]" * 100 + "}")
open("huge.json", "w").write('{"inputs": [[' + ",".join(["0.5"] * 600000) + "]]}")
PY

# --- refusals at start-up -------------------------------------------------
"$TSR_BIN" serve digits-model.h5 --bind 0.0.0.0 --run-dir run >o.txt 2>e.txt
rc=$?
[ $rc -eq 2 ] && grep -q "token" e.txt && ok "non-loopback bind without a token refused (exit 2)" \
  || bad "bind 0.0.0.0 without token: exit $rc, $(cat e.txt)"
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >token
chmod 644 token
"$TSR_BIN" serve digits-model.h5 --token-file token --run-dir run >o.txt 2>e.txt
rc=$?
[ $rc -eq 2 ] && grep -q "chmod 600" e.txt && ok "world-readable token file refused" || bad "token 644: exit $rc $(cat e.txt)"
chmod 600 token
"$TSR_BIN" serve no-such-model.h5 --run-dir run >o.txt 2>e.txt
rc=$?
[ $rc -eq 3 ] && ok "missing model: exit 3" || bad "missing model: exit $rc"

# --- a running coordinator --------------------------------------------------
start_server digits-model.h5 --port 0 --run-dir run --registry reg --token-file token \
  --set serve.max_delay_us=2000 --set serve.max_batch=16
[ -n "$PID" ] && kill -0 "$PID" 2>/dev/null && ok "serve started: $URL" || { cat serve.err; bad "serve did not start"; finish; exit 1; }
grep -Eq '^127\.0\.0\.1:[0-9]+$' <(head -1 run/coordinator.addr) && ok "address file holds host:port" || bad "address file"
AUTH=(-H "Authorization: Bearer $(cat token)")
JSON=(-H "Content-Type: application/json")

hit 200 "GET /health without a token" "$URL/health"
hit 401 "GET /status without a token" "$URL/status"
grep -qi '^WWW-Authenticate: Bearer' hdr.out && ok "401 names the Bearer scheme" || bad "no WWW-Authenticate"
hit 401 "GET /status with a wrong token" -H "Authorization: Bearer $(cat token)x" "$URL/status"
hit 401 "GET /metrics with a wrong scheme" -u user:pass "$URL/metrics"
hit 200 "GET /status" "${AUTH[@]}" "$URL/status"
jq_py 'assert d["model"]["inputs"] == 64 and d["model"]["outputs"] == 10 and d["state"] == "serving"' \
  && ok "/status names the model" || bad "/status: $(cat body.out)"
hit 200 "GET / (dashboard)" "${AUTH[@]}" "$URL/"
grep -q '<svg id="loss"' body.out && ! grep -Eqi '<script[^>]+src=|<link|<img|url\(' body.out \
  && ok "dashboard is self-contained" || bad "dashboard page"

# Predictions: shape, probabilities, the cache.
hit 200 "POST /predict one row" "${AUTH[@]}" "${JSON[@]}" --data-binary @one.json "$URL/predict"
jq_py 'o = d["outputs"]; assert len(o) == 1 and len(o[0]) == 10 and abs(sum(o[0]) - 1) < 1e-5' \
  && ok "one row of 10 probabilities" || bad "predict answer: $(cat body.out)"
hit 200 "POST /predict 20 rows" "${AUTH[@]}" "${JSON[@]}" --data-binary @twenty.json "$URL/predict"
cp body.out twenty.out
$PY - <<'PY' && ok "predictions match the labels (>= 17/20)" || bad "predictions look wrong"
import h5py, json, numpy as np
y = h5py.File("data/digits.h5", "r")["y_test"][:20]
p = np.array(json.load(open("twenty.out"))["outputs"])
assert p.shape == (20, 10) and (p.argmax(1) == y).sum() >= 17, (p.argmax(1), y)
PY
hit 200 "GET /cache" "${AUTH[@]}" "$URL/cache"
h0=$(jq_py 'print(d["hits"])')
hit 200 "POST /predict 20 rows again" "${AUTH[@]}" "${JSON[@]}" --data-binary @twenty.json "$URL/predict"
cmp -s body.out twenty.out && ok "cached answer is identical" || bad "cached answer differs"
hit 200 "GET /cache" "${AUTH[@]}" "$URL/cache"
jq_py "assert d['hits'] >= $h0 + 20 and d['entries'] >= 20 and d['bytes'] > 0" && ok "cache counted 20 hits" \
  || bad "cache stats: $(cat body.out)"
hit 200 "DELETE /cache" "${AUTH[@]}" -X DELETE "$URL/cache"
jq_py 'assert d["entries"] == 0 and d["bytes"] == 0' && ok "cache emptied" || bad "DELETE /cache: $(cat body.out)"

# Requests that arrive together share model calls.
pids=()
for i in $(seq 0 23); do
  curl -s -o "r$i.out" -w '%{http_code}\n' --max-time 30 "${AUTH[@]}" "${JSON[@]}" --data-binary "@row$i.json" \
    "$URL/predict" >"c$i.out" &
  pids+=($!)
done
wait "${pids[@]}" # not a bare wait: the server is a child too
n200=$(cat c*.out | grep -c '^200$')
[ "$n200" -eq 24 ] && ok "24 concurrent predictions answered" || bad "concurrent predictions: $n200/24 were 200"

# Every bad input: a 4xx with a JSON error.
hit 400 "malformed JSON" "${AUTH[@]}" "${JSON[@]}" -d '{"inputs": [[1, 2' "$URL/predict"
hit 422 "wrong input width" "${AUTH[@]}" "${JSON[@]}" --data-binary @narrow.json "$URL/predict"
hit 400 "NaN" "${AUTH[@]}" "${JSON[@]}" --data-binary @nan.json "$URL/predict"
hit 422 "1e39 overflows float32" "${AUTH[@]}" "${JSON[@]}" -d "{\"inputs\": [[1e39$(printf ',0%.0s' $(seq 63))]]}" "$URL/predict"
hit 400 "nesting 100 deep" "${AUTH[@]}" "${JSON[@]}" --data-binary @deep.json "$URL/predict"
hit 422 "no inputs" "${AUTH[@]}" "${JSON[@]}" -d '{"rows": []}' "$URL/predict"
hit 413 "body over max_body_kb" "${AUTH[@]}" "${JSON[@]}" --data-binary @huge.json "$URL/predict"
hit 413 "chunked body over max_body_kb" "${AUTH[@]}" "${JSON[@]}" -H "Transfer-Encoding: chunked" \
  --data-binary @huge.json "$URL/predict"
hit 415 "form-encoded body" "${AUTH[@]}" -d 'inputs=1' "$URL/predict"
hit 404 "unknown route" "${AUTH[@]}" "$URL/admin"
hit 405 "PUT /health" -X PUT "$URL/health"
grep -qi '^Allow: GET, HEAD' hdr.out && ok "405 lists the allowed methods" || bad "no Allow header"
hit 405 "GET /predict" "${AUTH[@]}" "$URL/predict"
hit 400 "path traversal in an id" "${AUTH[@]}" --path-as-is "$URL/models/../../etc/passwd"
hit 400 "encoded path traversal" "${AUTH[@]}" "$URL/models/..%2F..%2Ftoken/export?format=hdf5"
hit 404 "unknown model" "${AUTH[@]}" "$URL/models/nope-v1"
hit 401 "upload without a token" -H "Content-Type: application/octet-stream" --data-binary @digits-model.h5 "$URL/models"
hit 415 "upload that is not HDF5" "${AUTH[@]}" -H "Content-Type: application/octet-stream" --data-binary @digits.ini "$URL/models"
hit 422 "upload of an HDF5 file that is not a model" "${AUTH[@]}" -H "Content-Type: application/octet-stream" \
  --data-binary @data/digits.h5 "$URL/models"
ls -A reg 2>/dev/null | grep -q upload && bad "refused uploads left files behind" || ok "refused uploads leave nothing"
hit 200 "still serving after all that" "$URL/health"

# The registry.
hit 201 "POST /models (upload)" "${AUTH[@]}" -H "Content-Type: application/octet-stream" \
  --data-binary @digits-model.h5 "$URL/models?name=digits"
grep -qi '^Location: /models/digits-v1' hdr.out && ok "Location of the new model" || bad "no Location"
hit 201 "POST /models again" "${AUTH[@]}" -H "Content-Type: application/octet-stream" \
  --data-binary @digits-model.h5 "$URL/models?name=digits"
jq_py 'assert d["id"] == "digits-v2" and d["version"] == 2 and d["inputs"] == 64' && ok "second version" || bad "$(cat body.out)"
hit 200 "PATCH tags and status" "${AUTH[@]}" "${JSON[@]}" -X PATCH \
  -d '{"tags": ["best"], "status": "production", "metadata": {"owner": "e2e"}}' "$URL/models/digits-v1"
hit 422 "PATCH with a bad status" "${AUTH[@]}" "${JSON[@]}" -X PATCH -d '{"status": "shiny"}' "$URL/models/digits-v1"
hit 400 "PATCH with malformed JSON" "${AUTH[@]}" "${JSON[@]}" -X PATCH -d '{"tags": [' "$URL/models/digits-v1"
hit 200 "GET /models?tag=best" "${AUTH[@]}" "$URL/models?tag=best"
jq_py 'assert [m["id"] for m in d["models"]] == ["digits-v1"]' && ok "filter by tag" || bad "tag filter: $(cat body.out)"
hit 200 "GET /models?status=production&name=digits" "${AUTH[@]}" "$URL/models?status=production&name=digits"
jq_py 'assert len(d["models"]) == 1' && ok "filter by status and name" || bad "status filter"
hit 200 "GET /models/digits-v1" "${AUTH[@]}" "$URL/models/digits-v1"
jq_py 'assert d["tags"] == ["best"] and d["metadata"] == {"owner": "e2e"} and d["status"] == "production"' \
  && ok "metadata kept" || bad "metadata: $(cat body.out)"
hit 200 "DELETE /models/digits-v2" "${AUTH[@]}" -X DELETE "$URL/models/digits-v2"
hit 404 "DELETE it again" "${AUTH[@]}" -X DELETE "$URL/models/digits-v2"
curl -s -o route.h5 "${AUTH[@]}" "$URL/models/digits-v1/export?format=hdf5"
cmp -s route.h5 digits-model.h5 && ok "export?format=hdf5 gives the model file" || bad "hdf5 export differs"
hit 200 "export?format=onnx" "${AUTH[@]}" "$URL/models/digits-v1/export?format=onnx" && cp body.out route.onnx
grep -qi '^Content-Disposition: attachment; filename="digits-v1.onnx"' hdr.out && ok "ONNX download name" \
  || bad "Content-Disposition"
hit 400 "export?format=pt" "${AUTH[@]}" "$URL/models/digits-v1/export?format=pt"

# tessera export, and both ONNX files checked independently.
"$TSR_BIN" export digits-model.h5 --format onnx -o cli.onnx >o.txt 2>&1 && ok "tessera export --format onnx" || bad "export: $(cat o.txt)"
"$TSR_BIN" export digits-model.h5 -o copy.h5 >o.txt 2>&1 && cmp -s copy.h5 digits-model.h5 && ok "tessera export to .h5" \
  || bad "export h5"
"$TSR_BIN" export data/digits.h5 -o bad.onnx >o.txt 2>e.txt
[ $? -eq 3 ] && [ ! -e bad.onnx ] && ok "export of a non-model: exit 3, no file" || bad "export non-model"
"$TSR_BIN" export digits-model.h5 -o noformat >o.txt 2>e.txt
[ $? -eq 2 ] && ok "export without a format: exit 2" || bad "export without format"
for f in route.onnx cli.onnx; do
  /usr/bin/python3 - "$f" twenty.json twenty.out <<'PY' && ok "$f: onnx.checker passes, numpy evaluation matches /predict to 1e-5" || bad "$f failed the ONNX check"
import json, sys
import numpy as np, onnx
from onnx import numpy_helper, helper
m = onnx.load(sys.argv[1])
onnx.checker.check_model(m, full_check=True)
assert {n.op_type for n in m.graph.node} <= {"Gemm", "Relu", "Tanh", "Sigmoid", "Softmax"}
init = {t.name: numpy_helper.to_array(t).astype(np.float64) for t in m.graph.initializer}
env = {m.graph.input[0].name: np.array(json.load(open(sys.argv[2]))["inputs"], dtype=np.float32).astype(np.float64)}
for n in m.graph.node:  # a reference interpreter for the five operators, from the ONNX spec
    a = {at.name: helper.get_attribute_value(at) for at in n.attribute}
    x = [env[i] if i in env else init[i] for i in n.input]
    if n.op_type == "Gemm":
        A = x[0].T if a.get("transA", 0) else x[0]
        B = x[1].T if a.get("transB", 0) else x[1]
        y = a.get("alpha", 1.0) * (A @ B) + (a.get("beta", 1.0) * x[2] if len(x) > 2 else 0.0)
    elif n.op_type == "Relu":
        y = np.maximum(x[0], 0)
    elif n.op_type == "Tanh":
        y = np.tanh(x[0])
    elif n.op_type == "Sigmoid":
        y = 1 / (1 + np.exp(-x[0]))
    else:
        z = x[0] - x[0].max(axis=a.get("axis", -1), keepdims=True)
        y = np.exp(z) / np.exp(z).sum(axis=a.get("axis", -1), keepdims=True)
    env[n.output[0]] = y
got = env[m.graph.output[0].name]
want = np.array(json.load(open(sys.argv[3]))["outputs"])
assert got.shape == want.shape, (got.shape, want.shape)
diff = np.abs(got - want).max()
assert diff < 1e-5, diff
print(f"{sys.argv[1]}: max |onnx - /predict| = {diff:.2e}")
PY
done

# /metrics passes Prometheus' own checker.
hit 200 "GET /metrics" "${AUTH[@]}" "$URL/metrics"
grep -q '^# TYPE tessera_predict_batch_rows histogram' body.out && grep -q 'tessera_http_requests_total{route="predict",code="200"}' body.out \
  && ok "metrics: batches and per-route counters" || bad "metrics content"
if promtool check metrics <body.out >prom.out 2>&1; then ok "promtool check metrics"; else bad "promtool: $(cat prom.out)"; fi

# Stop by PID: it exits 0 and removes its address file.
kill -TERM "$PID"
wait "$PID"
rc=$?
PID=
[ $rc -eq 0 ] && ok "SIGTERM: exit 0" || bad "SIGTERM: exit $rc"
[ ! -e run/coordinator.addr ] && ok "address file removed" || bad "address file left behind"

# Serving a registry directory picks its production model.
start_server reg --run-dir run
hit 200 "serve REGISTRY: /status" "$URL/status"
jq_py 'assert d["model"]["source"].endswith("digits-v1.h5")' && ok "serves the production model" || bad "$(cat body.out)"
hit 200 "serve REGISTRY: /predict without a token on loopback" "${JSON[@]}" --data-binary @one.json "$URL/predict"
stop_server
finish
