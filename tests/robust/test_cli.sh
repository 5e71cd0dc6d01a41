#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Every command and subcommand against the README's exit-code table: with
# no arguments, with --help (exit 0, usage on stdout, nothing on stderr) and
# with an unknown option (exit 2, one line naming it); then options missing
# their value, stray arguments, and the data errors whose codes were wrong
# (a truncated file, an out-of-range label reported as a layer width).
. "$(dirname "$0")/lib.sh"
fixtures
export TESSERA_STATE_DIR=$PWD/state   # tessera jobs reads its (empty) list here
T=$TSR_BIN
COMMANDS=("data" "data convert" "data info" "ckpt" "ckpt list" "ckpt verify" "jobs" "submit" "serve" "export"
          "topo" "train" "tasks" "tasks run" "model" "model summary" "version")

# The table in README.md and `tessera --help`: 0 1 2 3 4 5 6 7 75 76 130.
table=$("$T" --help | sed -n '/^Exit codes:/,$p' | grep -o '\b[0-9][0-9]* [a-zA-Z]' | cut -d' ' -f1 | sort -n | tr '\n' ' ')
[ "$table" = "0 1 2 3 4 5 6 7 75 76 130 " ] && ok "tessera --help lists the exit codes 0 1 2 3 4 5 6 7 75 76 130" \
  || bad "exit code table in --help: '$table'"
for c in "${COMMANDS[@]}"; do
  # shellcheck disable=SC2086
  for code in $("$T" $c --help 2>/dev/null | sed -n '/Exit codes:/,$p' | grep -o '\b[0-9][0-9]* [a-z]' | cut -d' ' -f1); do
    case " $table" in *" $code "*) ;; *) bad "$c --help names exit code $code, which is not in the table" ;; esac
  done
done

# --help: exit 0, the usage on stdout, nothing on stderr.
for c in "" "${COMMANDS[@]}"; do
  # shellcheck disable=SC2086
  timeout 60 "$T" $c --help >o.txt 2>e.txt
  rc=$?
  [ $rc -eq 0 ] && grep -q '^usage: tessera' o.txt && [ ! -s e.txt ] && ok "tessera $c --help" \
    || { bad "tessera $c --help: exit $rc"; head -3 o.txt e.txt; }
done

# No arguments: a usage error (2) naming what was expected, except where
# none are needed.
hostile "tessera" 2 "no command given" "$T"
hostile "tessera data" 2 "data: expected a subcommand, convert or info" "$T" data
hostile "tessera data convert" 2 "data convert: expected an input" "$T" data convert
hostile "tessera data info" 2 "data info: no file" "$T" data info
hostile "tessera ckpt" 2 "ckpt: expected list DIR or verify FILE" "$T" ckpt
hostile "tessera ckpt list" 2 "ckpt list: expected one directory" "$T" ckpt list
hostile "tessera ckpt verify" 2 "ckpt verify: expected one or more checkpoint files" "$T" ckpt verify
hostile "tessera submit" 2 "submit: no CONFIG" "$T" submit
hostile "tessera serve" 2 "serve: expected a model file or registry directory" "$T" serve
hostile "tessera export" 2 "export: expected MODEL and -o OUT" "$T" export
hostile "tessera train" 2 "train: no CONFIG" "$T" train
# launch passes options it does not know to mpirun, so only a missing COMMAND is its own error.
hostile "tessera launch" 2 "launch: no tessera COMMAND" "$T" launch
hostile "tessera launch --bogus" 2 "launch: no tessera COMMAND" "$T" launch --bogus
timeout 60 "$T" launch --help >o.txt 2>e.txt && grep -q '^usage: tessera launch' o.txt && [ ! -s e.txt ] \
  && ok "tessera launch --help" || bad "tessera launch --help"
for c in jobs topo version; do
  timeout 60 "$T" $c >o.txt 2>e.txt && [ -s o.txt ] && ! grep -q error: e.txt && ok "tessera $c with no arguments: exit 0" \
    || { bad "tessera $c with no arguments"; cat e.txt; }
done

# An unknown option: exit 2, one line naming it, for every command.
for c in "" "${COMMANDS[@]}"; do
  # shellcheck disable=SC2086
  hostile "tessera $c --bogus" 2 "unknown option '--bogus'" "$T" $c --bogus
done
hostile "tessera ckpt list DIR --bogus" 2 "ckpt list: unknown option '--bogus'" "$T" ckpt list . --bogus
hostile "tessera ckpt verify FILE --bogus" 2 "ckpt verify: unknown option '--bogus'" "$T" ckpt verify model.h5 --bogus
hostile "tessera train CONFIG --bogus" 2 "train: unknown option '--bogus'" "$T" train small.ini --bogus
hostile "tessera export MODEL -o OUT --bogus" 2 "export: unknown option '--bogus'" "$T" export model.h5 -o x.onnx --bogus
hostile "tessera data convert -X" 2 "data convert: unknown option '-X'" "$T" data convert --csv a.csv -o x.h5 -X
hostile "tessera version extra" 2 "version: unknown argument 'extra'" "$T" version extra
hostile "tessera nosuchcommand" 2 "unknown command 'nosuchcommand'" "$T" nosuchcommand
hostile "tessera data nosuch" 2 "data: unknown subcommand 'nosuch'" "$T" data nosuch
hostile "tessera ckpt nosuch" 2 "ckpt: unknown action 'nosuch'" "$T" ckpt nosuch

# An option without its value names the option.
hostile "train --set without a value" 2 "train: --set needs a value" "$T" train small.ini --set
hostile "train --resume without a value" 2 "train: --resume needs a value" "$T" train small.ini --resume
hostile "export -o without a value" 2 "export: -o needs a value" "$T" export model.h5 -o
hostile "serve --port without a value" 2 "serve: --port needs a value" "$T" serve model.h5 --port
hostile "submit --time without a value" 2 "submit: --time needs a value" "$T" submit small.ini --time
hostile "data convert --csv without a value" 2 "data convert: --csv needs a value" "$T" data convert --csv
hostile "train: two configs" 2 "train: unexpected argument 'other.ini' after CONFIG small.ini" "$T" train small.ini other.ini
hostile "ckpt list: two directories" 2 "ckpt list: expected one directory, got 2" "$T" ckpt list a b

# Data errors: bad input data is 3 whatever the HDF5 library says.
head -c 2500 small.h5 > trunc.h5
: > empty.h5
hostile "truncated HDF5 dataset (was 4)" 3 "trunc.h5" "$T" data info trunc.h5
hostile "empty HDF5 dataset" 3 "empty.h5" "$T" data info empty.h5
$PY - <<'PY'
import h5py, numpy as np
X = np.random.default_rng(1).random((40, 8), dtype=np.float32); y = (np.arange(40) % 3).astype(np.int32)
y[7] = 2**31 - 1
with h5py.File("hugelabel.h5", "w") as f: f["X"] = X; f["y"] = y
y[7] = 2
with h5py.File("label2.h5", "w") as f: f["X"] = X; f["y"] = y
PY
hostile "a huge label (was reported as a layer width, exit 2)" 3 \
  "hugelabel.h5: /y row 7 (counting from 0) has label 2147483647, which needs 2147483648 outputs" \
  "$T" train small.ini --set data.path=hugelabel.h5
hostile "a label >= model.outputs" 3 "label2.h5: /y row 2 (counting from 0) has label 2; valid labels are 0..1 for 2 classes" \
  "$T" train small.ini --set data.path=label2.h5 --set model.outputs=2
hostile "data info: a huge label" 3 "row 7 (counting from 0) has label 2147483647" "$T" data info hugelabel.h5
robust_finish
