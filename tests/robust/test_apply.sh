#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# tessera apply against hostile input, on 2 ranks: each case exits with its
# documented code and one error line, leaves the inputs untouched and no
# output or temporary behind.
. "$(dirname "$0")/lib.sh"

$PY - <<'PY'
import h5py, numpy as np
rng = np.random.default_rng(3)
X = rng.random((500, 6), dtype=np.float32); y = (np.arange(500) % 3).astype(np.int32)
with h5py.File("d.h5", "w") as f:
    f["X"] = X; f["y"] = y
    f["cube"] = np.zeros((4, 4, 4), np.float32)
    f["names"] = np.array([b"a", b"b"])
with h5py.File("w8.h5", "w") as f:
    f["X"] = rng.random((50, 8), dtype=np.float32); f["y"] = (np.arange(50) % 3).astype(np.int32)
PY
printf 'not hdf5\n' >text.h5
mkfifo fifo.h5
mkdir outdir
cat > m.ini <<'INI'
[data]
path = w8.h5
[model]
hidden = 4
[train]
epochs = 1
batch_size = 10
output = m8.h5
register = false
[runtime]
progress = none
[checkpoint]
final = false
INI
"$TSR_BIN" train m.ini >train.txt 2>&1 || { bad "train: $(tail -2 train.txt)"; finish; exit 1; }
for v in CRASH WRONG_ABI NO_ENTRY REFUSE; do
  cc -shared -fPIC -D$v -I"$TSR_SRC/include" "$TSR_SRC/tests/robust/plugins/apply_bad.c" -o "$v.so" || bad "cc $v"
done
remember d.h5 w8.h5 m8.h5 text.h5
A=("$TSR_MPIEXEC" --oversubscribe --bind-to none -n 2 "$TSR_BIN" apply)
S=("$TSR_BIN" apply) # usage errors, found alike on every rank: one process

hostile "unknown dataset" 3 'no dataset /nope in the file' "${A[@]}" stats --input d.h5:/nope
hostile "unknown column" 2 'column 9 does not exist: d.h5:/X has 6 columns' "${A[@]}" stats --input d.h5 --columns 1,9
hostile "column list not numbers" 2 'expected column numbers' "${S[@]}" stats --input d.h5 --columns 1,x
hostile "negative column" 2 'expected column numbers' "${S[@]}" stats --input d.h5 --columns -1
hostile "partition size 0" 2 'partition-rows 0: expected a positive number' "${S[@]}" stats --input d.h5 --partition-rows 0
hostile "partition size < 0" 2 'partition-rows -5: expected a positive number' "${S[@]}" stats --input d.h5 --partition-rows -5
hostile "partition size not a number" 2 'partition-rows 1e3x' "${S[@]}" stats --input d.h5 --partition-rows 1e3x
hostile "3-D dataset" 3 'a dataset of 3 dimensions' "${A[@]}" stats --input d.h5:/cube
hostile "string dataset" 3 'not numeric' "${A[@]}" stats --input d.h5:/names
hostile "not an HDF5 file" 3 'text.h5: not an HDF5 file' "${A[@]}" stats --input text.h5
hostile "missing input" 3 'nope.h5' "${S[@]}" stats --input nope.h5
hostile "FIFO input" 3 'FIFO' "${A[@]}" stats --input fifo.h5
hostile "directory input" 3 'directory' "${S[@]}" stats --input outdir
hostile "no --input" 2 'give --input' "${S[@]}" stats
hostile "unknown function" 2 "unknown function 'stat'" "${S[@]}" stat --input d.h5
hostile "unknown option" 2 "unknown option '--rows'" "${S[@]}" stats --input d.h5 --rows 5
hostile "stats with --output" 2 'stats writes no HDF5 file' "${S[@]}" stats --input d.h5 --output o.h5
hostile "stats -o is the input" 2 'd.h5' "${S[@]}" stats --input d.h5 -o d.h5
hostile "stats -o a directory" 2 'directory' "${S[@]}" stats --input d.h5 -o outdir
hostile "predict without a model" 2 'give the model' "${S[@]}" predict --input d.h5 --output p.h5
hostile "predict without --output" 2 'give --output' "${S[@]}" predict m8.h5 --input d.h5
hostile "predict with -o" 2 'o is for stats and reductions' "${S[@]}" predict m8.h5 --input d.h5 --output p.h5 -o r.json
hostile "model width mismatch" 3 'the model m8.h5 takes 8 values per row, but d.h5:/X gives 6' "${A[@]}" predict m8.h5 \
  --input d.h5 --output p.h5
hostile "model not found" 3 'nope-v1 is neither a model file nor a model in the registry' "${A[@]}" predict nope-v1 \
  --input d.h5 --output p.h5 --registry reg
hostile "model that is not a model" 3 'd.h5' "${A[@]}" predict d.h5 --input w8.h5 --output p.h5
hostile "output is the input" 2 'd.h5' "${A[@]}" normalize --input d.h5 --output d.h5
hostile "output is the model" 2 'm8.h5' "${A[@]}" predict m8.h5 --input w8.h5 --output m8.h5
ln -s d.h5 link.h5
hostile "output through a link to the input" 2 'd.h5' "${A[@]}" normalize --input d.h5 --output link.h5
hostile "output is a directory" 2 'directory' "${S[@]}" normalize --input d.h5 --output outdir
hostile "unwritable output" 4 'nodir/o.h5' "${A[@]}" normalize --input d.h5 --output nodir/o.h5
hostile "missing plugin" 2 'plugin ./nope.so: no such file' "${S[@]}" ./nope.so --input d.h5 --output o.h5
hostile "plugin of another ABI" 2 'built for apply ABI version 42, this tessera has version 1' "${A[@]}" ./WRONG_ABI.so \
  --input d.h5 --output o.h5
hostile "not an apply plugin" 2 'lacks tessera_apply_plugin' "${A[@]}" ./NO_ENTRY.so --input d.h5 --output o.h5
hostile "plugin that is not a shared object" 2 'cannot load it' "${A[@]}" ./text.h5 --input d.h5 --output o.h5
hostile "plugin refuses the input" 3 'refused the input of 6 columns: this plugin wants no input' "${A[@]}" ./REFUSE.so \
  --input d.h5 --output o.h5
hostile "row plugin without --output" 2 'maps rows: give --output' "${A[@]}" ./CRASH.so --input d.h5
hostile "crashing plugin" 1 'crashed in map (signal 11, Segmentation fault); no output is written' \
  "${A[@]}" ./CRASH.so --input d.h5 --output o.h5 --partition-rows 50
grep -q 'partition [0-9]* (rows [0-9]* to [0-9]*)' h.err && ok "the crash names the partition: $(grep -o 'partition [0-9]* (rows [0-9 to]*)' h.err)" \
  || bad "crash without the partition"
[ ! -e o.h5 ] && [ ! -e p.h5 ] && [ ! -e .o.h5.tmp.apply ] && [ ! -e .o.h5.tmp.apply.journal ] \
  && ok "no output, temporary or journal after the failures" || { bad "leftovers"; ls -a; }
# the saved progress of stats and reductions (beside -o's result)
hostile "save interval not a number" 2 'save-every 5s: expected seconds' "${S[@]}" stats --input d.h5 -o s.json --save-every 5s
hostile "save interval negative" 2 'save-every -1: expected seconds' "${S[@]}" stats --input d.h5 -o s.json --save-every -1
hostile "save interval NaN" 2 'save-every nan: expected seconds' "${S[@]}" stats --input d.h5 -o s.json --save-every nan
mkdir .sd.json.tmp.apply.r0
hostile "saved-progress path is a directory" 2 '.sd.json.tmp.apply.r0 is a directory' "${A[@]}" stats --input d.h5 \
  -o sd.json --save-every 0 --partition-rows 50
mkfifo .sf.json.tmp.apply.r0
hostile "saved-progress path is a FIFO" 2 '.sf.json.tmp.apply.r0 is a FIFO' "${A[@]}" stats --input d.h5 \
  -o sf.json --save-every 0 --partition-rows 50
printf 'TSRAPRD1 but nothing after it' >.sj.json.tmp.apply.r0
head -c 3000 /dev/urandom >.sj.json.tmp.apply.r1
"${A[@]}" stats --input d.h5 -o sj.json --partition-rows 50 --quiet >sj.out 2>&1 && [ -s sj.json ] \
  && ! grep -q resuming sj.out && [ -z "$(ls -a | grep '^\.sj\.json\.tmp')" ] \
  && ok "junk saved-progress files: not used, removed, the result written" || { bad "junk saved files"; cat sj.out; }
[ -d .sd.json.tmp.apply.r0 ] && [ -p .sf.json.tmp.apply.r0 ] && [ ! -e sd.json ] && [ ! -e sf.json ] \
  && [ -z "$(ls -a | grep -E '^\.s[df]\.json\.tmp\.apply\.r[1-9]')" ] \
  && ok "the directory and FIFO left alone, no result, no other rank's saved file" || { bad "saved leftovers"; ls -a; }
rm -rf .sd.json.tmp.apply.r0 .sf.json.tmp.apply.r0 sj.json
intact "apply hostile cases"
robust_finish
