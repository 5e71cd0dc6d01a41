#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Outputs an attacker (or a typo) points somewhere dangerous: at one of the
# command's own inputs (directly, through a symbolic or a hard link), or at
# something that is not a regular file (FIFO, device node, socket,
# directory). Every writer refuses with exit 2 and one line naming both,
# before any work; inputs stay byte-identical and no temporary is left.
. "$(dirname "$0")/lib.sh"
fixtures
printf 'a,b,label\n0.1,0.2,0\n0.3,0.4,1\n0.5,0.6,0\n0.7,0.8,1\n' > in.csv
$PY - <<'PY'
import struct
def idx(name, magic, dims, data):
    with open(name, "wb") as f:
        f.write(struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in dims) + bytes(data))
idx("img.idx", 0x803, (4, 2, 2), range(16))
idx("lab.idx", 0x801, (4,), [0, 1, 0, 1])
idx("timg.idx", 0x803, (2, 2, 2), range(8))
idx("tlab.idx", 0x801, (2,), [1, 0])
PY
ln -s small.h5 sym-data.h5
ln small.h5 hard-data.h5
ln -s small.ini sym-config.ini
ln -s model.h5 sym-model.h5
ln model.h5 hard-model.h5
ln -s in.csv sym.csv
mkdir adir
mkfifo fifo
ln -s /dev/null devnull          # a device node reached through a link: never replaced
$PY -c 'import socket; s = socket.socket(socket.AF_UNIX); s.bind("sock")'
remember small.h5 test.h5 small.ini model.h5 in.csv img.idx lab.idx timg.idx tlab.idx
T=$TSR_BIN

# train: the model output is the dataset, the test set or the config.
for out in small.h5 sym-data.h5 hard-data.h5; do
  hostile "train.output = $out (the dataset)" 2 "output.*$out is the same file as the input .*small.h5" \
    "$T" train small.ini --set train.output=$out
done
hostile "train.output = data.test_path" 2 "test.h5 is the same file as the input .*test.h5" \
  "$T" train small.ini --set data.test_path=test.h5 --set train.output=test.h5
for out in small.ini sym-config.ini; do
  hostile "train.output = $out (the config)" 2 "$out is the same file as the input small.ini" \
    "$T" train small.ini --set train.output=$out
done
hostile "train.output = a path through .. to the dataset" 2 "same file as the input" \
  "$T" train small.ini --set train.output=./adir/../small.h5
hostile "train on 2 ranks, output = the dataset" 2 "same file as the input" \
  "$TSR_MPIEXEC" --oversubscribe --bind-to none -n 2 "$T" train small.ini --set train.output=hard-data.h5
mkdir -p checkpoints
hostile "train.output named like a checkpoint" 2 "named like a checkpoint in \[checkpoint\] dir" \
  "$T" train small.ini --set train.output=checkpoints/ckpt-0000000007.h5
cp small.h5 checkpoints/ckpt-0000000001.h5
hostile "data.path named like a checkpoint (retention would delete it)" 2 "\[data\] path.*named like a checkpoint" \
  "$T" train small.ini --set data.path=checkpoints/ckpt-0000000001.h5
[ -f checkpoints/ckpt-0000000001.h5 ] && ok "the dataset in the checkpoint directory is still there" \
  || bad "dataset in the checkpoint directory deleted"
for out in fifo devnull sock adir; do
  hostile "train.output = $out" 2 "$out is a.*, not a regular file" "$T" train small.ini --set train.output=$out
done
[ -p fifo ] && [ -L devnull ] && [ -c /dev/null ] && [ -S sock ] && [ -d adir ] \
  && ok "FIFO, device link, socket and directory are what they were" || bad "a special file was replaced"
# The checkpoint writer: a FIFO where the final checkpoint goes.
mkdir -p ck && mkfifo ck/ckpt-0000000010.h5
hostile "final checkpoint onto a FIFO, on_error = stop" 2 "ck/ckpt-0000000010.h5 is a FIFO" \
  "$T" train small.ini --set checkpoint.dir=ck --set checkpoint.final=true --set checkpoint.on_error=stop
[ -p ck/ckpt-0000000010.h5 ] && [ ! -e out.h5 ] && ok "the FIFO is kept and no model written" \
  || bad "checkpoint FIFO replaced or model written"
timeout 60 "$T" train small.ini --set checkpoint.dir=ck --resume auto >o.txt 2>e.txt \
  && grep -q "skipping ck/ckpt-0000000010.h5 is a FIFO" e.txt && [ -p ck/ckpt-0000000010.h5 ] \
  && ok "--resume auto skips a FIFO named like a checkpoint, without opening it" || { bad "resume past a FIFO"; cat e.txt; }
rm -f out.h5
intact "train"

# export: MODEL -o MODEL, through links, and special targets.
for out in model.h5 sym-model.h5 hard-model.h5; do
  hostile "export model.h5 -o $out" 2 "$out is the same file as the input model.h5" \
    "$T" export model.h5 --format hdf5 -o $out
done
hostile "export -o the model as ONNX" 2 "is the same file as the input" "$T" export model.h5 --format onnx -o model.h5
for out in fifo devnull sock adir; do
  hostile "export -o $out" 2 "$out is a.*, not a regular file" "$T" export model.h5 --format onnx -o $out
done
mkdir -p reg
"$T" export model.h5 -o reg/m.onnx >/dev/null 2>&1
intact "export"
# Writing through a link to a regular file replaces the file, not the link.
: > target.onnx
ln -s target.onnx link.onnx
"$T" export model.h5 -o link.onnx >/dev/null 2>e.txt && [ -L link.onnx ] && [ -s target.onnx ] \
  && ok "export through a symbolic link writes its target and keeps the link" || { bad "export through a link"; cat e.txt; }
# -o - streams to standard output (a pipe), the one special target written through.
"$T" export model.h5 --format onnx -o - 2>e.txt | cmp -s - target.onnx \
  && ok "export -o - writes the ONNX bytes to standard output" || { bad "export -o -"; cat e.txt; }

# data convert: -o one of its inputs.
for out in in.csv sym.csv; do
  hostile "data convert -o $out (the CSV)" 2 "$out is the same file as the input in.csv" \
    "$T" data convert --csv in.csv -o $out
done
for out in img.idx lab.idx timg.idx tlab.idx; do
  hostile "data convert -o $out (an IDX input)" 2 "$out is the same file as the input $out" \
    "$T" data convert --idx-images img.idx --idx-labels lab.idx --idx-test-images timg.idx \
    --idx-test-labels tlab.idx -o $out
done
for out in fifo devnull adir; do
  hostile "data convert -o $out" 2 "$out is a.*, not a regular file" "$T" data convert --csv in.csv -o $out
done
intact "data convert"

# serve: coordinator.addr is its one output.
mkdir -p rundir && mkfifo rundir/coordinator.addr
hostile "serve with coordinator.addr a FIFO" 2 "coordinator.addr is a FIFO" \
  "$T" serve model.h5 --run-dir rundir
[ -p rundir/coordinator.addr ] && ok "the FIFO is still a FIFO" || bad "coordinator.addr FIFO replaced"
intact "serve"
robust_finish
