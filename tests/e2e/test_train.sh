#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The main job: 2 ranks train the bundled digits model to a useful accuracy,
# print a summary line and write the model file.
. "$(dirname "$0")/lib.sh"
cp "$TSR_SRC/examples/digits.ini" . && mkdir -p data && cp "$TSR_SRC/examples/data/digits.h5" data/
mpi 2 train digits.ini --set runtime.progress=lines >out.txt 2>err.txt
rc=$?
cat out.txt err.txt
[ $rc -eq 0 ] && ok "exit 0" || bad "exit $rc"
line=$(grep 'done: test accuracy' out.txt)
[ -n "$line" ] && ok "summary line" || bad "no summary line"
acc=$(sed -n 's/.*test accuracy \([0-9.]*\)%.*/\1/p' out.txt)
awk -v a="$acc" 'BEGIN{exit !(a >= 95)}' && ok "accuracy $acc% >= 95%" || bad "accuracy '$acc' below 95%"
grep -q 'samples/s' <<<"$line" && grep -q 'wall' <<<"$line" && ok "throughput and wall time" || bad "summary fields"
# The final report's metrics: top-1 is the summary's accuracy, the matrix's
# rows hold every test sample (359 in the digits file) and its diagonal the hits.
top1=$(sed -n 's/.*test metrics: top-1 accuracy \([0-9.]*\)%, top-5 accuracy \([0-9.]*\)%.*/\1 \2/p' out.txt)
awk -v t="$top1" -v a="$acc" 'BEGIN{split(t, v, " "); exit !(v[1] == a && v[2] >= v[1] && v[2] <= 100)}' \
  && grep -q 'per-class accuracy: 0 ' out.txt \
  && awk '/confusion matrix/{m=1; next} m && /^tessera: +[0-9]+ \|/{sub(/.*\|/, ""); for (i = 1; i <= NF; i++) {n += $i; if (i == r + 1) d += $i} r++; next} {m=0}
          END{exit !(r == 10 && n == 359 && d / n * 100 >= 95)}' out.txt \
  && ok "test metrics: top-1 = accuracy, top-5 >= top-1, a 10x10 confusion matrix of the 359 test samples" \
  || { bad "test metrics '$top1' vs accuracy $acc"; grep -A12 'test metrics' out.txt; }
[ -f digits-model.h5 ] && ok "model file written" || bad "no model file"
ls -a | grep -q '\.tmp\.' && bad "temporary file left behind" || ok "no temporary files"
$PY - <<'PY' && ok "model file readable by h5py" || bad "model file schema"
import h5py, json
f = h5py.File("digits-model.h5", "r")
fmt = f.attrs["format"]
assert (fmt.decode() if isinstance(fmt, bytes) else fmt) == "tessera-model", fmt
spec = json.loads(f.attrs["model"])
assert [l["out"][0] for l in spec["layers"] if l["kind"] == "dense"] == [128, 128, 10], spec
assert [l["kind"] for l in spec["layers"]] == ["dense", "relu", "dense", "relu", "dense"], spec
assert f.attrs["version"] == 2
assert f["model/layer_0/weight"].shape == (128, 64)
assert f["model/layer_4/bias"].shape == (10,)
PY
# One rank, a progress bar forced on, also works.
mpi 1 train digits.ini --set train.epochs=2 --set runtime.progress=bar --set train.output=one.h5 >bar.txt 2>&1 \
  && grep -q $'\r' bar.txt && ok "progress bar" || bad "progress bar run"
finish
