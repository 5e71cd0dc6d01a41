#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Layer graphs end to end (examples/digits_cnn.ini: convolutions, batch norm,
# a residual block, dropout): two runs give byte-identical model files
# (weights and running statistics), a run killed and resumed gives the same
# bytes as an uninterrupted one, sync_bn trains, a checkpoint of another
# architecture is refused naming the first differing layer, the summary.
. "$(dirname "$0")/lib.sh"
cp "$TSR_SRC/examples/digits_cnn.ini" . && mkdir -p data && cp "$TSR_SRC/examples/data/digits.h5" data/
common=(--set train.epochs=3 --set runtime.progress=none --set checkpoint.every_steps=20 --set checkpoint.keep=2
        --set serve.registry=reg)

same_model() { # same_model A B: every dataset under /model equal, byte for byte
  $PY - "$1" "$2" <<'PY'
import sys, h5py
def w(p):
    out = []
    h5py.File(p, "r")["model"].visititems(lambda n, o: out.append((n, o[()].tobytes())) if isinstance(o, h5py.Dataset) else None)
    return out
a, b = w(sys.argv[1]), w(sys.argv[2])
sys.exit(0 if a == b and any("running_var" in n for n, _ in a) else 1)
PY
}

mpi 2 train digits_cnn.ini "${common[@]}" --set train.output=a.h5 --set checkpoint.dir=cka >a.txt 2>&1 \
  && ok "CNN trains on 2 ranks ($(grep -o 'test accuracy [0-9.]*%' a.txt))" || { bad "CNN run"; cat a.txt; }
mpi 2 train digits_cnn.ini "${common[@]}" --set train.output=b.h5 --set checkpoint.dir=ckb >/dev/null 2>&1
same_model a.h5 b.h5 && ok "two runs with dropout and batch norm: byte-identical" || bad "two runs differ"

# Killed at a step between checkpoints, resumed: the same bytes as run a.
TSR_FAULT_KILL="1:47" mpi 2 train digits_cnn.ini "${common[@]}" --set train.output=k.h5 --set checkpoint.dir=ckk \
  >kill.txt 2>&1
[ -e k.h5 ] && bad "the killed run wrote its model"
mpi 2 train digits_cnn.ini "${common[@]}" --set train.output=k.h5 --set checkpoint.dir=ckk --resume auto >res.txt 2>&1 \
  && grep -q 'resumed from ckk/ckpt-0000000040.h5' res.txt && ok "resumed from step 40" || { bad "resume"; cat res.txt; }
same_model a.h5 k.h5 && ok "killed at step 47 and resumed: byte-identical to the uninterrupted run" \
  || bad "resumed run differs"

# Another architecture: refused, naming the first layer that differs.
mpi 2 train digits_cnn.ini "${common[@]}" --set train.output=o.h5 --set checkpoint.dir=cko \
  --set "model.layers=conv(16,3,pad=1) bn relu conv(8,3,pad=1) relu maxpool(2) flatten dense(10)" \
  --resume cka/ckpt-0000000132.h5 >o.txt 2>&1
rc=$?
[ $rc -eq 3 ] && grep -q 'a checkpoint of another model' o.txt \
  && grep -q 'layer 3 is conv(8,3,pad=1) here and res{ there' o.txt && ok "another architecture refused (exit 3)" \
  || { bad "another architecture: rc $rc"; cat o.txt; }
mpi 2 train digits_cnn.ini "${common[@]}" --set train.output=o2.h5 --set checkpoint.dir=cka \
  --set "model.layers=conv(16,3,pad=1) bn relu flatten dense(10)" --resume auto >o2.txt 2>&1 \
  && grep -q 'skipping cka/ckpt-0000000132.h5: a checkpoint of another model: layer 3 is flatten here and res{ there' o2.txt \
  && ok "resume auto skips checkpoints of another architecture" || { bad "auto skip"; cat o2.txt; }

# Batch-norm statistics over both ranks.
mpi 2 train digits_cnn.ini "${common[@]}" --set train.output=s.h5 --set checkpoint.dir=cks --set model.sync_bn=true \
  >s.txt 2>&1 && acc=$(grep -o 'test accuracy [0-9.]*' s.txt | grep -o '[0-9.]*$') \
  && $PY -c "import sys; sys.exit(0 if float('$acc') > 90 else 1)" && ok "sync_bn trains ($acc%)" \
  || { bad "sync_bn"; cat s.txt; }

# A layer plugin (examples/plugin/swish.c) calls tsr_error_set, which the
# program exports to the plugins it loads (it links libtessera statically):
# it loads on both ranks, trains, and its own error message reaches the user.
SW=$TSR_BUILD/examples/libtessera_swish.so
mpi 2 train digits_cnn.ini "${common[@]}" --set train.output=sw.h5 --set checkpoint.dir=cksw --set model.plugins="$SW" \
  --set "model.layers=flatten dense(32) swish dense(10)" >sw.txt 2>&1 && grep -q 'test accuracy' sw.txt \
  && ok "the swish plugin trains" || { bad "swish plugin"; cat sw.txt; }
# Accumulated on the CPU, a plugin's kind (no TSR_LAYER_ACCUMULATES) writes
# its gradients into the model's scratch, which the model adds: 4 x 16
# trains the same weights as batch 64, to rounding.
swl=(--set model.plugins="$SW" --set "model.layers=flatten dense(32) swish dense(10)" --set model.sync_bn=false)
mpi 1 train digits_cnn.ini "${common[@]}" "${swl[@]}" --set train.batch_size=64 --set train.output=sw64.h5 \
  --set checkpoint.dir=cksw64 >sw64.txt 2>&1 \
  && mpi 1 train digits_cnn.ini "${common[@]}" "${swl[@]}" --set train.batch_size=16 --set train.accumulate_steps=4 \
    --set train.output=sw4x16.h5 --set checkpoint.dir=cksw4 >sw4.txt 2>&1 \
  && d=$($PY -c "
import sys, h5py, numpy as np
def w(p):
    out = []
    h5py.File(p, 'r')['model'].visititems(lambda n, o: out.append(o[()].ravel()) if isinstance(o, h5py.Dataset) else None)
    return np.concatenate(out)
print('%.3g' % np.abs(w('sw64.h5') - w('sw4x16.h5')).max())") \
  && awk -v d="$d" 'BEGIN{exit !(d + 0 <= 1e-5)}' \
  && ok "the plugin accumulated (4 x 16) trains batch 64's weights (max difference $d)" \
  || { bad "plugin with accumulation: '${d:-}'"; cat sw64.txt sw4.txt; }
mpi 2 train digits_cnn.ini "${common[@]}" --set train.output=sw0.h5 --set checkpoint.dir=cksw0 --set model.plugins="$SW" \
  --set "model.layers=flatten swish(beta0=0) dense(10)" >sw0.txt 2>&1
rc=$?
[ $rc -eq 2 ] && grep -q 'swish(beta0=0): expected a starting slope above 0' sw0.txt && [ ! -e sw0.h5 ] \
  && ok "the plugin's own error (tsr_error_set) reaches the user, exit 2" || { bad "plugin error: rc $rc"; cat sw0.txt; }

# The summary, from the config and from the model file.
"$TSR_BIN" model summary digits_cnn.ini >sum.txt 2>&1 && grep -q "^3  *res{  *16x8x8" sum.txt \
  && grep -q 'total: 7562 parameters (7466 trained, 96 buffers)' sum.txt && ok "model summary of the config" \
  || { bad "summary"; cat sum.txt; }
"$TSR_BIN" model summary a.h5 | grep -q 'maxpool(2)  *16x4x4' && ok "model summary of the model file" \
  || bad "summary of a.h5"
finish
