#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# tessera sweep on 2 real MPI ranks over the bundled digits data: grid and
# random trials on groups of 1 and 2 ranks, the results table (CSV and JSON
# parsed, every trial present), the best model in the registry with its
# parameters, trials byte-identical to the same training run alone (also
# through ASHA's stops at rungs), SIGTERM and SIGKILL then resume (finished
# trials not rerun), and GET /sweep with curl while it runs.
. "$(dirname "$0")/lib.sh"
cp "$TSR_SRC/examples/digits.ini" . && mkdir -p data && cp "$TSR_SRC/examples/data/digits.h5" data/
Q=(--set runtime.progress=none --set train.epochs=3)

# 1. Grid x random on 2 groups of 1 rank; results and the registry.
mpi 2 sweep digits.ini --grid optim.lr=0.01,0.1 --random optim.weight_decay=loguniform:1e-5:1e-2 --trials 4 \
  "${Q[@]}" -o s1 >s1.log 2>&1 && ok "grid x random sweep ran" || { bad "sweep failed"; cat s1.log; }
$PY - <<'PY' && ok "trials.csv and trials.json: 4 trials, parameters, metrics per epoch, the best registered" || bad "results"
import csv, json, math
rows = list(csv.DictReader(open("s1/trials.csv")))
doc = json.load(open("s1/trials.json"))
assert [int(r["trial"]) for r in rows] == [0, 1, 2, 3], rows
assert all(r["status"] == "done" and r["epochs"] == "3" for r in rows), rows
assert [r["optim.lr"] for r in rows] == ["0.01", "0.1", "0.01", "0.1"], rows
wd = [float(r["optim.weight_decay"]) for r in rows]
assert all(1e-5 <= w <= 1e-2 for w in wd) and len(set(wd)) == 4, wd
assert all(0 < float(r["test_accuracy"]) <= 1 and float(r["test_loss"]) > 0 for r in rows), rows
for r, t in zip(rows, doc["trials"]):
    assert t["params"] == {"optim.lr": r["optim.lr"], "optim.weight_decay": r["optim.weight_decay"]}, (r, t)
    assert [h["epoch"] for h in t["history"]] == [1, 2, 3], t
    assert abs(t["history"][-1]["test_accuracy"] - float(r["test_accuracy"])) < 1e-5, t
best = max(range(4), key=lambda i: (float(rows[i]["test_accuracy"]), -float(rows[i]["test_loss"])))
assert doc["best_trial"] == best and doc["registry_id"] == "sweep-v1", doc["best_trial"]
meta = json.load(open("registry/sweep-v1.json"))["metadata"]
assert meta["optim.lr"] == rows[best]["optim.lr"] and meta["optim.weight_decay"] == rows[best]["optim.weight_decay"]
assert meta["sweep_trial"] == best and abs(meta["test_accuracy"] - float(rows[best]["test_accuracy"])) < 1e-5
PY
cmp -s registry/sweep-v1.h5 "s1/trials/$($PY -c 'import json; print(json.load(open("s1/trials.json"))["best_trial"])')/model.h5" \
  && ok "the registered model is the best trial's file" || bad "registered model differs from the best trial's"

# 2. Groups of 2 ranks: a trial is the same training as `tessera train` on 2 ranks.
mpi 2 sweep digits.ini --grid optim.lr=0.05,0.1 --ranks-per-trial 2 "${Q[@]}" -o s2 >s2.log 2>&1 \
  && grep -q '1 groups of 2 ranks' s2.log && ok "sweep with 2 ranks per trial" || { bad "k=2 sweep"; cat s2.log; }
mpi 2 train digits.ini "${Q[@]}" --set optim.lr=0.1 --set train.output=ref2.h5 --set checkpoint.dir=ck2 >/dev/null 2>&1
same_weights ref2.h5 s2/trials/1/model.h5 && ok "trial on 2 ranks byte-identical to tessera train on 2 ranks" \
  || bad "k=2 trial differs from the same training alone"

# 3. ASHA: some trials stop at the rung, the rest finish; a finished one
# (stopped and resumed at the rung) equals the uninterrupted training.
mpi 2 sweep digits.ini --grid optim.lr=0.003,0.01,0.05,0.1 --asha 2:0.5 --set runtime.progress=none \
  --set train.epochs=5 -o s3 >s3.log 2>&1 && ok "ASHA sweep ran" || { bad "ASHA sweep"; cat s3.log; }
fin=$($PY - <<'PY'
import csv
rows = list(csv.DictReader(open("s3/trials.csv")))
done = [r for r in rows if r["status"] == "done"]
pruned = [r for r in rows if r["status"] == "pruned"]
assert len(done) >= 1 and len(pruned) >= 1 and len(done) + len(pruned) == 4, rows
assert all(r["epochs"] == "5" for r in done) and all(r["epochs"] == "2" for r in pruned), rows
print(done[0]["trial"], done[0]["optim.lr"])
PY
) && ok "ASHA: trials pruned at the rung, the others trained to the end ($fin)" || bad "ASHA table"
set -- $fin
mpi 1 train digits.ini --set runtime.progress=none --set train.epochs=5 --set optim.lr="$2" --set train.output=ref3.h5 \
  --set checkpoint.dir=ck3 >/dev/null 2>&1
same_weights ref3.h5 "s3/trials/$1/model.h5" && ok "ASHA trial resumed at its rung equals the uninterrupted run" \
  || bad "ASHA trial differs from the uninterrupted run"

# 4. SIGTERM to the ranks after the first trial: exit 75, then the same command resumes.
A=(sweep digits.ini --grid optim.lr=0.01,0.03,0.1 --grid train.batch_size=16,32 --set runtime.progress=none
  --set train.epochs=4 --set checkpoint.every_steps=20 -o s4)
mpi 2 "${A[@]}" >s4a.log 2>&1 &
job=$!
for _ in $(seq 600); do grep -q ',done,' s4/trials.csv 2>/dev/null && break; sleep 0.1; done
for p in $(pgrep -f "^$TSR_BIN sweep digits.ini .*-o s4"); do kill -TERM "$p"; done
wait $job
rc=$?
[ $rc -eq 75 ] && ok "SIGTERM: exit 75" || { bad "SIGTERM: exit $rc"; tail -5 s4a.log; }
grep ',done,' s4/trials.csv >before.txt
mpi 2 "${A[@]}" >s4b.log 2>&1 && grep -q "resuming from s4/trials.json: $(wc -l <before.txt) of 6 trials finished" s4b.log \
  && ok "resumed with $(wc -l <before.txt) trials finished" || { bad "resume"; cat s4b.log; }
grep -cx -F -f before.txt s4/trials.csv | grep -qx "$(wc -l <before.txt)" && ok "finished trials kept as they were (not rerun)" \
  || { bad "finished trials changed on resume"; echo "before:"; cat before.txt; echo "after:"; cat s4/trials.csv; }
[ "$(grep -c ',done,' s4/trials.csv)" -eq 6 ] && ok "every trial done after the resume" || { bad "trials missing"; cat s4/trials.csv; }

# 5. SIGKILL of a rank in its trial: the job dies; the rerun finishes every trial.
B=(sweep digits.ini --grid optim.lr=0.01,0.1 --set runtime.progress=none --set train.epochs=3
  --set checkpoint.every_steps=10 -o s5)
TSR_FAULT_KILL=0:25 mpi 2 "${B[@]}" >s5a.log 2>&1
rc=$?
[ $rc -ne 0 ] && ! grep -q ',done,' s5/trials.csv && ls s5/trials/1/ckpt/ckpt-*.h5 >/dev/null 2>&1 \
  && ok "SIGKILL: the job died (exit $rc) with trials under way and checkpointed" || { bad "SIGKILL: exit $rc"; cat s5/trials.csv; }
mpi 2 "${B[@]}" >s5b.log 2>&1 && [ "$(grep -c ',done,' s5/trials.csv)" -eq 2 ] && ok "rerun after SIGKILL finished" \
  || { bad "rerun after SIGKILL"; cat s5b.log; }
mpi 1 train digits.ini --set runtime.progress=none --set train.epochs=3 --set optim.lr=0.1 --set train.output=ref5.h5 \
  --set checkpoint.dir=ck5 >/dev/null 2>&1
same_weights ref5.h5 s5/trials/1/model.h5 && ok "the killed trial resumed from its checkpoint to the same weights" \
  || bad "killed trial's weights differ"

# 6. A trial that diverges is recorded as failed; the others go on. Budgets.
mpi 2 sweep digits.ini --grid optim.lr=0.05,1e9 "${Q[@]}" -o s7 >s7.log 2>&1 && $PY - <<'PY' \
  && ok "a diverging trial is failed with its error, the other done, exit 0" || { bad "failed trial"; cat s7.log s7/trials.csv; }
import csv
rows = list(csv.DictReader(open("s7/trials.csv")))
assert rows[0]["status"] == "done" and rows[1]["status"] == "failed" and "diverged" in rows[1]["error"], rows
PY
mpi 2 sweep digits.ini --grid optim.lr=0.01,0.02,0.05,0.1 "${Q[@]}" --budget-trials 2 -o s8 >s8.log 2>&1 \
  && [ "$(grep -c ',done,' s8/trials.csv)" -eq 2 ] && [ "$(grep -c ',skipped,' s8/trials.csv)" -eq 2 ] \
  && ok "--budget-trials 2: 2 done, 2 skipped" || { bad "--budget-trials"; cat s8.log s8/trials.csv; }
mpi 2 sweep digits.ini --grid optim.lr=0.01,0.02,0.05,0.1 "${Q[@]}" --budget-seconds 0.001 -o s9 >s9.log 2>&1 \
  && grep -q ',skipped,' s9/trials.csv && ! grep -qE ',(pending|running),' s9/trials.csv \
  && ok "--budget-seconds: trials past the budget skipped" || { bad "--budget-seconds"; cat s9.log s9/trials.csv; }

# 7. GET /sweep and the dashboard's plot while a sweep runs.
mkdir -p run
mpi 2 sweep digits.ini --grid optim.lr=0.01,0.02,0.05,0.1 --set runtime.progress=none --set train.epochs=12 \
  --set serve.enabled=true --set serve.run_dir=run -o s6 >s6.log 2>&1 &
job=$!
for _ in $(seq 600); do [ -s run/coordinator.addr ] && break; sleep 0.1; done
addr=$(head -1 run/coordinator.addr 2>/dev/null)
curl -sf "http://$addr/" | grep -q "showSweep" && ok "dashboard has the trials plot" || bad "dashboard lacks the sweep plot"
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST "http://$addr/sweep")
[ "$code" = 405 ] && ok "POST /sweep: 405" || bad "POST /sweep: $code"
got=0
for _ in $(seq 600); do
  curl -sf "http://$addr/sweep" -o sw.json && grep -q '"status": "done"' sw.json && { got=1; break; }
  kill -0 $job 2>/dev/null || break
  sleep 0.1
done
[ $got -eq 1 ] && $PY -c 'import json; d = json.load(open("sw.json")); assert len(d["trials"]) == 4 and d["keys"] == ["optim.lr"]' \
  && ok "GET /sweep: the live table with a finished trial" || { bad "GET /sweep"; cat sw.json s6.log; }
wait $job && ok "served sweep finished" || { bad "served sweep"; cat s6.log; }
finish
