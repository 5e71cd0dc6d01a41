#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The coordinator during training: rank 0 serves /status, /metrics and
# /predict from the newest weights while 2 ranks train; the finished model
# lands in the registry.
. "$(dirname "$0")/lib.sh"
cp "$TSR_SRC/examples/digits.ini" . && mkdir -p data && cp "$TSR_SRC/examples/data/digits.h5" data/
mpi 2 train digits.ini --set train.epochs=100000 --set runtime.progress=none --set serve.enabled=true \
  --set train.log_every=20 --set train.output=live.h5 >out.txt 2>&1 &
job=$!
trap 'kill $job 2>/dev/null; rm -rf "$WORK"' EXIT
for i in $(seq 300); do [ -s coordinator.addr ] && break; sleep 0.1; done
addr=$(head -1 coordinator.addr 2>/dev/null)
[ -n "$addr" ] && ok "address file: $addr" || bad "no coordinator.addr"
# Wait for a published snapshot, then read it again to see training move.
for i in $(seq 100); do curl -sf "http://$addr/status" -o s1.json && grep -q '"step": *[1-9]' s1.json && break; sleep 0.1; done
sleep 1
curl -sf "http://$addr/status" -o s2.json || bad "GET /status"
$PY - <<'PY' && ok "/status moves and lists both ranks" || { bad "/status"; cat s1.json s2.json; }
import json
a, b = json.load(open("s1.json")), json.load(open("s2.json"))
assert b["step"] > a["step"] > 0, (a["step"], b["step"])
assert len(b["ranks"]) == 2, b["ranks"]
assert all(r["step_time_s"]["mean"] > 0 for r in b["ranks"]), b["ranks"]
PY
curl -sf "http://$addr/metrics" -o m.txt && grep -q 'rank="1"' m.txt && ok "/metrics has per-rank series" \
  || { bad "/metrics"; head -40 m.txt; }
if command -v promtool >/dev/null; then
  promtool check metrics <m.txt >/dev/null 2>&1 && ok "promtool accepts /metrics" || bad "promtool"
fi
row=$($PY -c "import h5py; print(list(map(float, h5py.File('data/digits.h5')['X_test'][0])))")
curl -sf -X POST "http://$addr/predict" -H 'Content-Type: application/json' -d "{\"inputs\": [$row]}" -o p.json \
  && grep -q '"outputs"' p.json && ok "/predict answers from the live weights" || { bad "/predict"; cat p.json; }
pkill -TERM -f "^$TSR_BIN train digits.ini.*live.h5"; wait $job; rc=$?
[ $rc -eq 75 ] && ok "stopped with a checkpoint (exit 75)" || { bad "training rc $rc"; tail out.txt; }
[ ! -e coordinator.addr ] && ok "address file removed at exit" || bad "coordinator.addr left behind"
# A finished run registers its model.
mpi 2 train digits.ini --set train.epochs=2 --set runtime.progress=none --set train.output=done.h5 >d.txt 2>&1 \
  && ls registry/done-v1.h5 >/dev/null 2>&1 && grep -q 'registered done.h5' d.txt && ok "model registered" \
  || { bad "not registered"; cat d.txt; ls registry; }
finish
