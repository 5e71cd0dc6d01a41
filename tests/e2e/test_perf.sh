#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Counters and resource use as a user meets them (issue 17): 2 ranks train
# with PAPI events; the final report gives the phases, the events per step,
# every rank's resource use and tessera's counters; /status and /metrics
# (scraped with curl, checked by promtool) carry them with rank and host
# labels while training runs; a stand-alone `tessera serve` reports its own
# process; [monitor] perf = false leaves them out.
. "$(dirname "$0")/lib.sh"
cp "$TSR_SRC/examples/digits.ini" . && mkdir -p data && cp "$TSR_SRC/examples/data/digits.h5" data/
EV=PAPI_TOT_INS,PAPI_TOT_CYC,sde:::tessera::steps,sde:::tessera::samples LIVE=sde:::tessera::steps
if [ "${TSR_HAVE_PAPI:-ON}" != ON ]; then
  echo "skip: built without PAPI (TESSERA_WITH_PAPI): no events, the rest checked"
  EV= LIVE=
fi

# The final report.
mpi 2 train digits.ini --set train.epochs=2 --set monitor.papi_events=$EV --set train.output=a.h5 >out.txt 2>&1 \
  && ok "training with papi_events = $EV" || { bad "training"; cat out.txt; }
grep -q 'perf: time per step by phase (mean of 2 ranks): data .*forward .*backward .*reduce .*optimizer' out.txt \
  && ok "report: time per step by phase" || { bad "no phase line"; cat out.txt; }
grep -q 'perf: rank 1 on .*: CPU .* user .* system, RSS .*(peak .*), read .*, written .*, context switches' out.txt \
  && ok "report: rank 1's resource use" || bad "no resource line for rank 1"
if [ -n "$EV" ]; then
  grep -q "perf: rank 0 PAPI per step: .*sde:::tessera::samples 16" out.txt \
    && ok "report: PAPI events per step (16 samples per rank and step)" || { bad "no PAPI line"; grep perf out.txt; }
fi
grep -q "perf: rank 0's counters (PAPI sde:::tessera::<name>): steps 88, samples 1408, reduced_bytes_" out.txt \
  && ok "report: tessera's counters" || { bad "counters line"; grep counters out.txt; }
if [ -z "$EV" ]; then
  :
elif command -v papi_command_line >/dev/null && ! papi_command_line PAPI_TOT_INS PAPI_TOT_CYC 2>&1 | grep -q "Failed adding"; then
  grep -q "IPC [0-9]" out.txt && ok "report: IPC from this machine's counters" || bad "no IPC"
  grep -q "not counted on this machine" out.txt && bad "hardware events said missing" || ok "no warning"
else
  # No counting here: perf_event disabled (paranoia, no PMU), or listed but
  # refused when added (a virtual machine without a virtual PMU).
  n=$(grep -c "not counted on this machine" out.txt)
  [ "$n" -eq 1 ] && grep -qE "PAPI_TOT_INS, PAPI_TOT_CYC: (PAPI component perf_event is disabled|PAPI lists them but cannot add them)" out.txt \
    && ok "no hardware counters here: one line says why (hardware path skipped)" \
    || { bad "$n warning lines"; grep warning out.txt; }
fi

# Live: /status and /metrics while 2 ranks train.
mpi 2 train digits.ini --set train.epochs=100000 --set runtime.progress=none --set serve.enabled=true \
  --set train.log_every=20 --set train.output=live.h5 --set monitor.papi_events=$LIVE >live.txt 2>&1 &
job=$!
trap 'kill $job 2>/dev/null; stop_server; rm -rf "$WORK"' EXIT
for i in $(seq 300); do [ -s coordinator.addr ] && break; sleep 0.1; done
addr=$(head -1 coordinator.addr 2>/dev/null)
for i in $(seq 100); do curl -sf "http://$addr/status" -o s.json && grep -q '"ranks"' s.json && grep -q '"phases"' s.json && break; sleep 0.1; done
curl -sf "http://$addr/metrics" -o m.txt || bad "GET /metrics"
kill -TERM $job; wait $job
$PY - "$LIVE" <<'PY' && ok "/status perf: both ranks' phases, events, counters and resources" || { bad "/status perf"; cat s.json; }
import json, sys
p = json.load(open("s.json"))["perf"]
ev = [sys.argv[1]] if sys.argv[1] else []
assert p["events"] == ev, p["events"]
assert [r["rank"] for r in p["ranks"]] == [0, 1]
for r in p["ranks"]:
    assert r["host"] and r["counters"]["steps"] > 0
    assert not ev or sum(ph["events"][ev[0]] for ph in r["phases"].values()) > 0
    assert r["phases"]["backward"]["seconds"] > 0 and r["phases"]["reduce"]["entries"] > 0
    res = r["resources"]
    assert res["cpu_user_s"] > 0 and res["rss_bytes"] > 0 and res["peak_rss_bytes"] >= res["rss_bytes"]
    assert res["gpu"] is None
PY
for m in 'process_cpu_seconds_total{rank="1",host="' 'process_resident_memory_bytes{rank="0",host="' \
  'tessera_phase_seconds_total{rank="1",host="[^"]*",phase="backward"}' \
  ${LIVE:+'tessera_papi_events_total{rank="0",host="[^"]*",phase="other",event="sde:::tessera::steps"}'} \
  'tessera_sde_reduce_wait_seconds_total{rank="1"' 'tessera_process_io_bytes_total{rank="0",host="[^"]*",direction="write"}'; do
  grep -q "^$m" m.txt && ok "/metrics: $m" || bad "/metrics lacks $m"
done
promtool check metrics <m.txt && ok "promtool accepts the training /metrics" || bad "promtool (training)"
! grep -q '^tessera_gpu_' m.txt && ok "no GPU series without NVML" || bad "GPU series without a GPU"

# A stand-alone coordinator reports its own process.
mkdir -p run
"$TSR_BIN" serve a.h5 --run-dir run >serve.out 2>serve.err &
PID=$!
for _ in $(seq 100); do [ -s run/coordinator.addr ] && break; sleep 0.1; done
url=http://$(head -1 run/coordinator.addr 2>/dev/null)
curl -sf "$url/metrics" -o sm.txt && curl -sf "$url/status" -o ss.json || bad "serve: GET"
stop_server
grep -qE '^process_cpu_seconds_total\{host="[^"]+"\} [0-9.e+-]+$' sm.txt && ok "serve: process_cpu_seconds_total{host}" \
  || { bad "serve: no process_cpu_seconds_total"; grep process sm.txt; }
grep -q '^tessera_process_peak_resident_memory_bytes{host=' sm.txt && ok "serve: peak RSS" || bad "serve: peak RSS"
promtool check metrics <sm.txt && ok "promtool accepts the coordinator's /metrics" || bad "promtool (serve)"
$PY -c 'import json; p = json.load(open("ss.json"))["perf"]["process"]; assert p["resources"]["rss_bytes"] > 0' \
  && ok "serve: /status perf.process" || bad "serve: /status perf"

# Monitoring off: no perf lines, no per-rank series.
mpi 2 train digits.ini --set train.epochs=1 --set monitor.perf=false --set train.output=b.h5 >off.txt 2>&1 \
  && ! grep -q "perf:" off.txt && ok "[monitor] perf = false: no report" || { bad "perf off"; grep perf off.txt; }
finish
