#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Inputs that are not what they claim: a FIFO (opening it for reading would
# block until a writer comes), /dev/zero (never ends), a directory, a
# missing, empty or truncated file. Every reader refuses at once with exit
# 3 and one line naming the file and what was expected; nothing hangs and
# nothing is written.
. "$(dirname "$0")/lib.sh"
fixtures
mkfifo fifo fifo.csv fifo.h5
mkdir adir
: > empty.h5
head -c 3000 small.h5 > trunc.h5
head -c 1200 model.h5 > trunc-model.h5
printf 'a,b,label\n0.1,0.2,0\n0.3,0.4,1\n' > in.csv
remember small.h5 small.ini model.h5 in.csv
T=$TSR_BIN
SPECIAL="fifo /dev/zero adir"
kind() { case $1 in fifo*) echo "a FIFO" ;; /dev/zero) echo "a character device" ;; *) echo "a directory" ;; esac; }

for f in $SPECIAL; do
  k=$(kind $f)
  hostile "train: data.path = $f" 3 "$f is $k, not a regular file; expected an HDF5 dataset" \
    "$T" train small.ini --set data.path=$f
  hostile "train: data.test_path = $f" 3 "$f is $k, not a regular file" \
    "$T" train small.ini --set data.test_path=$f
  hostile "train: the config is $f" 3 "$f is $k, not a regular file; expected an INI configuration file" \
    "$T" train $f
  hostile "train: --resume $f" 3 "$f is $k, not a regular file; expected a tessera checkpoint" \
    "$T" train small.ini --resume $f
  hostile "data info $f" 3 "$f is $k, not a regular file" "$T" data info $f
  hostile "data convert --csv $f" 3 "$f is $k, not a regular file; expected a CSV file" \
    "$T" data convert --csv $f -o conv.h5
  hostile "data convert --idx-images $f" 3 "$f is $k, not a regular file; expected an IDX file" \
    "$T" data convert --idx-images $f --idx-labels $f -o conv.h5
  hostile "export $f" 3 "$f is $k, not a regular file; expected a tessera model file" \
    "$T" export $f -o exp.onnx
  hostile "ckpt verify $f" 3 "$f is $k, not a regular file" "$T" ckpt verify $f
  hostile "serve --config $f" 3 "$f is $k, not a regular file" "$T" serve model.h5 --config $f
  hostile "submit: the config is $f" 3 "$f is $k, not a regular file" "$T" submit $f --print-script
done
# 2 ranks: every rank ends, none waits in a collective for one that is stuck in open().
hostile "train on 2 ranks: data.path a FIFO" 3 "fifo.h5 is a FIFO" \
  "$TSR_MPIEXEC" --oversubscribe --bind-to none -n 2 "$T" train small.ini --set data.path=fifo.h5
hostile "data convert FILE.csv that is a FIFO" 3 "fifo.csv is a FIFO" "$T" data convert fifo.csv -o conv.h5
hostile "serve a FIFO as the model" 3 "fifo is a FIFO, not a regular file" "$T" serve fifo
hostile "serve /dev/zero as the model" 3 "/dev/zero is a character device" "$T" serve /dev/zero

# Missing, empty and truncated files: all bad input data (3), never an I/O failure (4).
hostile "data info: empty file" 3 "empty.h5: not an HDF5 file" "$T" data info empty.h5
hostile "data info: truncated HDF5" 3 "trunc.h5: .*truncated or damaged" "$T" data info trunc.h5
hostile "train: truncated dataset" 3 "trunc.h5: .*truncated or damaged" "$T" train small.ini --set data.path=trunc.h5
hostile "train: missing dataset" 3 "nothere.h5: no such file" "$T" train small.ini --set data.path=nothere.h5
hostile "export: truncated model" 3 "trunc-model.h5: .*truncated or damaged" "$T" export trunc-model.h5 -o exp.onnx
hostile "serve: truncated model" 3 "trunc-model.h5: .*truncated or damaged" "$T" serve trunc-model.h5
hostile "export: empty model" 3 "empty.h5: not an HDF5 file" "$T" export empty.h5 -o exp.onnx
hostile "ckpt verify: truncated" 3 "trunc.h5" "$T" ckpt verify trunc.h5
hostile "data convert: missing CSV" 3 "nothere.csv: no such file" "$T" data convert --csv nothere.csv -o conv.h5

# ckpt list: the directory a user names must exist and be one.
hostile "ckpt list: missing directory" 3 "nodir: No such file or directory; expected a checkpoint directory" \
  "$T" ckpt list nodir
hostile "ckpt list: a file" 3 "small.h5 is a regular file; expected a checkpoint directory" "$T" ckpt list small.h5
hostile "ckpt list: a FIFO" 3 "fifo is a FIFO; expected a checkpoint directory" "$T" ckpt list fifo
mkdir -p cks && mkfifo cks/ckpt-0000000003.h5
hostile "ckpt list: a FIFO named like a checkpoint" 3 "cks/ckpt-0000000003.h5 is a FIFO" "$T" ckpt list cks

[ ! -e conv.h5 ] && [ ! -e exp.onnx ] && [ ! -e out.h5 ] && ok "no output written by any refused command" \
  || bad "an output was written: $(ls conv.h5 exp.onnx out.h5 2>/dev/null)"
intact "inputs"
robust_finish
