#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The timeline and the bottleneck report on a real 2-rank digits run:
# per-rank Chrome trace files (every phase on both ranks, one process track
# per rank, timestamps in order, begins and ends paired, bucket and
# checkpoint-write spans), the phase sums against the step time, tessera
# trace merge, a task farm's timeline, and a rank slowed on purpose (TSR_FAULT_SLOW) named slowest
# by the final report, by /status and /metrics while it trains, and by the
# Prometheus alert rule fed the series that run exported.
. "$(dirname "$0")/lib.sh"
cp "$TSR_SRC/examples/digits.ini" . && mkdir -p data && cp "$TSR_SRC/examples/data/digits.h5" data/
mpi 2 train digits.ini --set train.epochs=3 --set runtime.progress=none --set monitor.trace=tl/trace.json \
  --set checkpoint.every_steps=40 --set runtime.bucket_kb=16 --set train.output=m.h5 >out.txt 2>&1
rc=$?
[ $rc -eq 0 ] && ok "traced run exit 0" || { cat out.txt; bad "exit $rc"; }
[ -s tl/trace.rank0.json ] && [ -s tl/trace.rank1.json ] && ok "one trace file per rank" || { ls -R tl; bad "trace files"; }
grep -q 'bottleneck report (2 ranks' out.txt && grep -q 'suggestion: ' out.txt && ok "bottleneck report logged" \
  || { bad "no bottleneck report"; cat out.txt; }
grep 'bottleneck report\|step time:\|slowest rank\|suggestion\|phase timers' out.txt
$PY - tl/trace.rank0.json tl/trace.rank1.json <<'PY' >check.txt 2>&1 && ok "trace files valid" || bad "trace files"
import json, sys
phases = ["data", "forward", "backward", "reduce_wait", "optimizer", "checkpoint"]
for rank, path in enumerate(sys.argv[1:]):
    d = json.load(open(path))
    assert d["otherData"]["tessera_rank"] == rank and d["otherData"]["dropped"] == 0, d["otherData"]
    ev = d["traceEvents"]
    assert {e["pid"] for e in ev} == {rank}, "one process track per rank"
    names = [e for e in ev if e["ph"] == "M" and e["name"] == "process_name"]
    assert names and names[0]["args"]["name"] == "rank %d" % rank
    seen = {e["name"] for e in ev if e["ph"] == "B"}
    assert set(phases) <= seen, (rank, set(phases) - seen)
    assert "bucket" in {e["name"] for e in ev if e["ph"] == "b"}, "bucket spans"
    if rank == 0:
        assert "ckpt_write" in seen, "checkpoint writes on rank 0"
        tnames = {e["tid"]: e["args"]["name"] for e in ev if e["ph"] == "M" and e["name"] == "thread_name"}
        wtid = {e["tid"] for e in ev if e["ph"] == "B" and e["name"] == "ckpt_write"}
        assert {tnames.get(t) for t in wtid} == {"tsr-ckpt"}, ("the writer thread's name", tnames, wtid)
    by_tid, open_, sums, steps = {}, {}, dict.fromkeys(phases, 0.0), 0.0
    for e in ev:
        if e["ph"] not in "BE":
            continue
        t = e["tid"]
        assert e["ts"] >= by_tid.get(t, 0), ("timestamps go back", e)
        by_tid[t] = e["ts"]
        st = open_.setdefault(t, [])
        if e["ph"] == "B":
            st.append(e)
        else:
            b = st.pop()
            assert b["name"] == e["name"], (b, e)
            if e["name"] in sums:
                sums[e["name"]] += e["ts"] - b["ts"]
            elif e["name"] == "step":
                steps += e["ts"] - b["ts"]
    assert all(not s for s in open_.values()), "every begin has its end"
    total = sum(sums.values())
    print("rank %d: phase sums %.1f ms over steps of %.1f ms: %.2f%% (%s)" % (
        rank, total / 1e3, steps / 1e3, 100 * total / steps,
        ", ".join("%s %.1f%%" % (k, 100 * v / steps) for k, v in sums.items())))
    assert abs(total - steps) <= 0.02 * steps, "phase sums within 2% of the step time"
print("clock offset of rank 1 to rank 0: %.6f s" % json.load(open(sys.argv[2]))["otherData"]["clock_offset_s"])
PY
cat check.txt
"$TSR_BIN" trace merge -o merged.json tl/trace.rank0.json tl/trace.rank1.json >merge.out 2>&1 \
  && ok "trace merge" || { cat merge.out; bad "trace merge"; }
$PY - <<'PY' && ok "merged file: two process tracks, every event of both" || bad "merged file"
import json
m = json.load(open("merged.json"))
a, b = (json.load(open("tl/trace.rank%d.json" % r)) for r in (0, 1))
assert sorted(m["otherData"]["tessera_ranks"]) == [0, 1]
assert len(m["traceEvents"]) == len(a["traceEvents"]) + len(b["traceEvents"])
assert {e["pid"] for e in m["traceEvents"]} == {0, 1}
PY

# A task farm's timeline: every task a span on the rank that ran it.
printf 'sleep 0.1\nsleep 0.2\ntrue\nsleep 0.1\n' >tasks.txt
mpi 2 tasks run tasks.txt --trace tt/t.json --progress 0 >tasks.out 2>&1 || { cat tasks.out; bad "tasks run"; }
$PY - <<'PY' && ok "tasks run --trace: each task one span, on one rank" || bad "task timeline"
import json
ids = []
for r in (0, 1):
    ev = json.load(open("tt/t.rank%d.json" % r))["traceEvents"]
    b = sorted(e["id"] for e in ev if e["ph"] == "b" and e["name"] == "task")
    assert b == sorted(e["id"] for e in ev if e["ph"] == "e" and e["name"] == "task"), ev
    ids += b
assert sorted(ids) == [0, 1, 2, 3], ids
PY

# Rank 1 slowed 4x: the final report names it.
TSR_FAULT_SLOW=1:4 mpi 2 train digits.ini --set train.epochs=2 --set runtime.progress=none \
  --set train.output=slow.h5 >slow.txt 2>&1 || { cat slow.txt; bad "slowed run failed"; }
grep 'slowest rank' slow.txt
grep -q 'slowest rank: 1, ' slow.txt && grep -q 'suggestion: rank 1 computes' slow.txt \
  && ok "the final report names rank 1 slowest" || { bad "report did not name rank 1"; cat slow.txt; }

# Live: /status, /metrics and the alert rule on the series it exports.
# (Each snapshot covers the steps since the last log point: on a loaded
# machine a short window can catch the other rank descheduled mid-compute,
# so the rank is slowed 8x, windows are 40 steps, and the page is read
# again until /status and /metrics come from one window that names it.)
TSR_FAULT_SLOW=1:8 mpi 2 train digits.ini --set train.epochs=100000 --set runtime.progress=none \
  --set serve.enabled=true --set train.log_every=40 --set train.output=live.h5 >live.txt 2>&1 &
job=$!
trap 'kill $job 2>/dev/null; rm -rf "$WORK"' EXIT
for _ in $(seq 300); do [ -s coordinator.addr ] && break; sleep 0.1; done
addr=$(head -1 coordinator.addr 2>/dev/null)
for _ in $(seq 150); do
  curl -sf "http://$addr/status" -o s.json && grep -q '"slowest_rank": *1' s.json \
    && curl -sf "http://$addr/metrics" -o m.txt && grep -q '^tessera_slowest_rank 1' m.txt && break
  sleep 0.2
done
$PY - <<'PY' && ok "/status names rank 1 slowest, with phases per rank" || { bad "/status"; cat s.json; }
import json
s = json.load(open("s.json"))
b = s["bottleneck"]
assert b["slowest_rank"] == 1 and b["suggestions"], b
assert all(r["phase_s"]["forward"] > 0 for r in s["ranks"]), s["ranks"]
PY
grep -q 'tessera_rank_phase_seconds{rank="1",phase="backward"}' m.txt && grep -q '^tessera_slowest_rank 1' m.txt \
  && ok "/metrics: per-rank phase series, slowest rank 1" || { bad "/metrics"; grep phase m.txt; }
promtool check metrics <m.txt >/dev/null 2>&1 && ok "promtool accepts /metrics" || bad "promtool check metrics"
kill -TERM $job 2>/dev/null; wait $job
# The scraped phase series, held for 10 minutes, into promtool's rule test.
# (annotations left out: their text holds the measured figure)
$PY -c "import yaml, sys
d = yaml.safe_load(open(sys.argv[1]))
for r in d['groups'][0]['rules']: r.pop('annotations', None)
yaml.safe_dump(d, open('tessera-rules.yml', 'w'))" "$TSR_SRC/examples/prometheus/tessera-rules.yml"
$PY - <<'PY' >scraped.test.yml
import re
print("rule_files: [tessera-rules.yml]\nevaluation_interval: 1m\ntests:\n  - interval: 1m\n    input_series:")
for line in open("m.txt"):
    m = re.match(r'tessera_rank_phase_seconds\{rank="(\d+)",phase="(\w+)"\} (\S+)', line)
    if m:
        print("      - series: 'tessera_rank_phase_seconds{job=\"tessera\",instance=\"c:1\",rank=\"%s\",phase=\"%s\"}'"
              % m.group(1, 2))
        print("        values: '%sx12'" % m.group(3))
print("    alert_rule_test:\n      - eval_time: 10m\n        alertname: TesseraRankSlow\n        exp_alerts:")
print("          - exp_labels: {severity: warning, job: tessera, instance: 'c:1', rank: '1'}")
PY
promtool test rules scraped.test.yml >scraped.out 2>&1 \
  && ok "the TesseraRankSlow alert fires for rank 1 (only) on the series the run exported" \
  || { cat scraped.out; bad "alert rule on the scraped series"; }
finish
