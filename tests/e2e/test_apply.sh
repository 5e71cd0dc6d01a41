#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# tessera apply on real MPI ranks: stats against numpy and byte-identical
# for 1, 2 and 3 ranks; predict read back with h5py against the model's
# /predict over HTTP (tessera serve, curl) and against the ONNX export
# evaluated by onnx_eval.py; normalize against numpy; the
# example plugins (a row function, a reduction) built here with cc; a run
# killed with SIGKILL and rerun on another number of ranks continues from
# its journal and gives the same file as an uninterrupted one.
. "$(dirname "$0")/lib.sh"
trap 'stop_server; rm -rf "$WORK"' EXIT

$PY - <<'PY'
import h5py, numpy as np
rng = np.random.default_rng(7)
n = 10007
X = rng.normal(3, 2, (n, 6)).astype(np.float32)
X[:, 2] = rng.integers(0, 10, n)
X[5, 4] = np.nan
y = (X[:, 0] > 3).astype(np.int32) + (X[:, 1] > 3).astype(np.int32)
X[5, 4] = np.nan
with h5py.File("d.h5", "w") as f:
    f["X"] = X; f["y"] = y
    f.create_group("g")["u8"] = rng.integers(0, 256, (n, 3)).astype(np.uint8)
    f["g/u8"].attrs["scale"] = np.float32(1 / 255)
Xc = np.nan_to_num(X[:, [0, 1, 2, 3, 5]])
with h5py.File("c.h5", "w") as f:
    f["X"] = Xc; f["y"] = y
with h5py.File("r.h5", "w") as f:
    f["X"] = np.repeat(np.arange(2000, dtype=np.float32)[:, None], 3, 1)
PY

# ---- stats: numpy reference, same bytes on 1, 2, 3 ranks ------------------
for n in 1 2 3; do
  mpi $n apply stats --input d.h5 --partition-rows 777 -o s$n.json >st$n.txt 2>&1 || bad "stats on $n ranks: $(tail -3 st$n.txt)"
done
cmp -s s1.json s2.json && cmp -s s1.json s3.json && ok "stats: the same bytes on 1, 2 and 3 ranks" || bad "stats differ by rank count"
grep -q '^column .*count .*mean' st1.txt && [ "$(grep -c '^[0-5] ' st1.txt)" = 6 ] && ok "stats: a table of 6 columns" \
  || { bad "stats table"; cat st1.txt; }
# Partitions of 6000 rows span several of the statistics' cache blocks
# (2730 rows of 6 columns), the last one partial, a NaN in the first.
mpi 2 apply stats --input d.h5 --partition-rows 6000 --quiet -o sbig.json >stb.txt 2>&1 || bad "stats, big partitions: $(tail -3 stb.txt)"
$PY - <<'PY' && ok "stats: count, mean, var, min, max exact; quantiles and histogram within a bucket of numpy (partitions of 777 and 6000 rows)" || bad "stats vs numpy"
import h5py, json, numpy as np, sys
X = h5py.File("d.h5")["X"][()]
for f in ("s1.json", "sbig.json"):
  cols = json.load(open(f))["columns"]
  assert len(cols) == 6
  for j, c in enumerate(cols):
      v = X[:, j].astype(np.float64); v = v[~np.isnan(v)]
      assert c["count"] == len(v) and c["nans"] == len(X) - len(v), (j, c["count"])
      assert abs(c["mean"] - v.mean()) <= 1e-12 * max(1, abs(v.mean())), (j, c["mean"], v.mean())
      assert abs(c["var"] - v.var()) <= 1e-10 * v.var(), (j, c["var"], v.var())
      assert c["min"] == v.min() and c["max"] == v.max()
      span = v.max() - v.min()
      for q, got in c["quantiles"].items():
          want = np.quantile(v, float(q))
          assert abs(got - want) <= 0.01 * max(abs(want), 1e-3) + 1e-3 * span, (j, q, got, want)
      h = c["histogram"]; want, _ = np.histogram(v, bins=np.array(h["edges"]))
      assert sum(h["counts"]) == len(v), (j, sum(h["counts"]))
      assert np.abs(np.array(h["counts"]) - want).sum() <= 0.01 * len(v), (j, h["counts"], want.tolist())
PY
mpi 2 apply stats --input d.h5:/g/u8 --columns 2,0 --quiet -o u8.json >u8.txt 2>&1 || bad "stats of /g/u8: $(tail -2 u8.txt)"
$PY - <<'PY' && ok "stats: a uint8 dataset in a group, scaled, two columns in the order asked" || bad "stats /g/u8"
import h5py, json, numpy as np
U = h5py.File("d.h5")["g/u8"][()].astype(np.float32) * np.float32(1 / 255)
cols = json.load(open("u8.json"))["columns"]
assert len(cols) == 2
for c, j in zip(cols, (2, 0)):
    assert abs(c["mean"] - U[:, j].astype(np.float64).mean()) < 1e-9, (c["mean"], j)
PY

# ---- predict: /pred as /predict answers, /label its argmax ------------------
cat > c.ini <<'INI'
[data]
path = c.h5
[model]
hidden = 16
[train]
epochs = 2
batch_size = 64
output = m.h5
register = false
[runtime]
progress = none
[checkpoint]
final = false
INI
"$TSR_BIN" train c.ini >train.txt 2>&1 || { bad "train: $(tail -2 train.txt)"; finish; exit 1; }
mpi 3 apply predict m.h5 --input c.h5 --output p.h5 --partition-rows 1000 >pr.txt 2>&1 || bad "predict: $(tail -3 pr.txt)"
mpi 1 apply predict m.h5 --input c.h5 --output p1.h5 --partition-rows 1000 >pr1.txt 2>&1 || bad "predict 1 rank"
mkdir -p run
"$TSR_BIN" serve m.h5 --run-dir run --port 0 --registry reg >serve.out 2>serve.err &
PID=$!
for _ in $(seq 100); do
  [ -s run/coordinator.addr ] && break
  kill -0 "$PID" 2>/dev/null || break
  sleep 0.1
done
URL=http://$(head -1 run/coordinator.addr 2>/dev/null)
$PY - "$URL" <<'PY' && ok "predict on 3 ranks: /pred equals POST /predict, /label its argmax, same as 1 rank" \
  || bad "predict vs /predict"
import h5py, json, numpy as np, sys, urllib.request
X = h5py.File("c.h5")["X"][()]
f = h5py.File("p.h5"); pred = f["pred"][()]; label = f["label"][()]
assert pred.shape == (len(X), 3) and label.shape == (len(X),), (pred.shape, label.shape)
assert (label == pred.argmax(1)).all()
one = h5py.File("p1.h5")
assert (one["pred"][()] == pred).all() and (one["label"][()] == label).all()
rows = [0, 1, 999, 1000, 5003, len(X) - 1]
body = json.dumps({"inputs": [[float(v) for v in X[r]] for r in rows]}).encode()
req = urllib.request.Request(sys.argv[1] + "/predict", body, {"Content-Type": "application/json"})
out = np.array(json.load(urllib.request.urlopen(req, timeout=30))["outputs"], dtype=np.float32)
assert np.array_equal(out, pred[rows]), (out, pred[rows])
PY
stop_server
"$TSR_BIN" export m.h5 --format onnx -o m.onnx >exp.txt 2>&1 || bad "export: $(cat exp.txt)"
$PY - <<'PY'
import h5py, json
X = h5py.File("c.h5")["X"][()]; pred = h5py.File("p.h5")["pred"][()]
rows = list(range(0, len(X), 97)) + [len(X) - 1]
json.dump({"inputs": [[float(v) for v in X[r]] for r in rows]}, open("onnx_in.json", "w"))
json.dump({"outputs": [[float(v) for v in pred[r]] for r in rows]}, open("onnx_out.json", "w"))
PY
$PY "$TSR_SRC/tests/e2e/onnx_eval.py" m.onnx onnx_in.json onnx_out.json >onnx.txt 2>&1 \
  && ok "predict's /pred against the ONNX export (onnx.checker, numpy evaluator): $(cat onnx.txt)" \
  || bad "predict vs ONNX: $(cat onnx.txt)"

# ---- normalize: (x - mean) / std, /y copied --------------------------------
mpi 2 apply normalize --input c.h5 --output n.h5 --partition-rows 500 >no.txt 2>&1 || bad "normalize: $(tail -3 no.txt)"
$PY - <<'PY' && ok "normalize on 2 ranks: standardised /X, /mean, /std, /y copied" || bad "normalize vs numpy"
import h5py, numpy as np
f = h5py.File("c.h5"); g = h5py.File("n.h5")
X = f["X"][()].astype(np.float64)
Z = (X - X.mean(0)) / X.std(0)
assert g["X"].dtype == np.float32 and g["X"].shape == X.shape
assert np.abs(g["X"][()] - Z).max() < 1e-5, np.abs(g["X"][()] - Z).max()
assert np.allclose(g["mean"][()], X.mean(0)) and np.allclose(g["std"][()], X.std(0))
assert (g["y"][()] == f["y"][()]).all() and g["y"].dtype == np.int32
PY

# ---- plugins built here: a row function and a reduction ---------------------
for p in norms colsum; do
  cc -shared -fPIC -O2 -I"$TSR_SRC/include" "$TSR_SRC/examples/apply/$p.c" -o "lib$p.so" -lm || bad "cc $p.c"
done
mpi 2 apply ./libnorms.so --input c.h5 --output norms.h5 --partition-rows 300 >pn.txt 2>&1 || bad "norms: $(tail -3 pn.txt)"
for n in 1 3; do
  mpi $n apply ./libcolsum.so --input c.h5 --partition-rows 300 -o sum$n.json >ps$n.txt 2>&1 || bad "colsum: $(tail -3 ps$n.txt)"
done
cmp -s sum1.json sum3.json && ok "reduction plugin: the same bytes on 1 and 3 ranks" || bad "colsum differs by ranks"
$PY - <<'PY' && ok "plugins: /out [rows, 2] and the column sums against numpy" || bad "plugins vs numpy"
import h5py, json, numpy as np
X = h5py.File("c.h5")["X"][()].astype(np.float64)
o = h5py.File("norms.h5")["out"][()]
assert o.shape == (len(X), 2)
assert np.allclose(o[:, 0], X.sum(1), rtol=1e-5, atol=1e-4) and np.allclose(o[:, 1], np.sqrt((X * X).sum(1)), rtol=1e-5)
r = json.load(open("sum1.json"))["result"]
assert r[0] == len(X) and np.allclose(r[1:], X.sum(0), rtol=1e-9), (r, X.sum(0))
PY

# ---- kill and resume ------------------------------------------------------
cc -shared -fPIC -DSLOW -I"$TSR_SRC/include" "$TSR_SRC/tests/robust/plugins/apply_bad.c" -o slow.so || bad "cc slow"
setsid "$TSR_MPIEXEC" --oversubscribe --bind-to none -n 2 "$TSR_BIN" apply ./slow.so --input r.h5 --output sl.h5 \
  --partition-rows 20 >k1.txt 2>&1 &
K=$!
for _ in $(seq 300); do
  [ -f .sl.h5.tmp.apply.journal ] && [ "$(grep -c '^done' .sl.h5.tmp.apply.journal)" -ge 2 ] && break
  sleep 0.1
done
kill -KILL -- -"$K" 2>/dev/null
wait "$K" 2>/dev/null
[ -f .sl.h5.tmp.apply ] && [ -f .sl.h5.tmp.apply.journal ] && [ ! -e sl.h5 ] \
  && ok "killed: the temporary and its journal stay, no output" || { bad "after the kill"; ls -a; cat k1.txt; }
mpi 3 apply ./slow.so --input r.h5 --output sl.h5 --partition-rows 20 >k2.txt 2>&1 || bad "resume: $(tail -3 k2.txt)"
grep -q 'resuming sl.h5: [1-9][0-9]* of 100 partitions were written before' k2.txt && ok "rerun resumed: $(grep -o '[0-9]* of 100' k2.txt)" \
  || { bad "no resume line"; cat k2.txt; }
[ ! -e .sl.h5.tmp.apply ] && [ ! -e .sl.h5.tmp.apply.journal ] && ok "the temporary and journal are gone" || bad "leftovers"
$PY - <<'PY' && ok "resumed output equals the input rows (every partition written once)" || bad "resumed output"
import h5py, numpy as np
a = h5py.File("r.h5")["X"][()]; b = h5py.File("sl.h5")["out"][()]
assert (a == b).all()
PY
finish
