#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# tessera sweep against hostile arguments: unknown keys (the nearest one
# named), empty grids, bad distributions, keys the sweep owns, ASHA rungs
# outside the run, ranks per trial that do not divide the job, a results
# directory of another sweep or damaged: exit 2 (or 3, 4), one error line,
# nothing trained, no result file written.
. "$(dirname "$0")/lib.sh"
fixtures
T=$TSR_BIN
S=("$T" sweep small.ini -o res)
G=(--grid optim.lr=0.01,0.1)

hostile "no CONFIG" 2 "no CONFIG file given" "$T" sweep --grid optim.lr=0.1
hostile "nothing to sweep" 2 "nothing to sweep" "${S[@]}"
hostile "unknown option" 2 "unknown option '--grdi'" "${S[@]}" --grdi optim.lr=0.1
hostile "option without a value" 2 "--trials needs a value" "${S[@]}" "${G[@]}" --trials
hostile "unknown key" 2 "unknown key 'lrr' in \[optim\]; did you mean optim.lr" "${S[@]}" --grid optim.lrr=0.1,0.2
hostile "unknown section" 2 "unknown section \[optimm\]; did you mean \[optim\]" "${S[@]}" --grid optimm.lr=0.1
hostile "unknown random key" 2 "did you mean optim.weight_decay" "${S[@]}" --random optim.weight_decy=uniform:0:1 --trials 2
hostile "no key" 2 "expected section.key=v1,v2" "${S[@]}" --grid 0.1,0.2
hostile "empty grid" 2 "optim.lr: an empty grid" "${S[@]}" --grid optim.lr=
hostile "empty grid value" 2 "an empty grid or an empty value in '0.1,,0.2'" "${S[@]}" --grid optim.lr=0.1,,0.2
hostile "trailing comma" 2 "an empty value" "${S[@]}" --grid optim.lr=0.1,
hostile "grid value of the wrong type" 2 "lr" "${S[@]}" --grid optim.lr=0.1,fast
hostile "grid value out of range" 2 "batch_size" "${S[@]}" --grid train.batch_size=4,0
hostile "unknown distribution" 2 "unknown distribution 'gauss'" "${S[@]}" --random optim.lr=gauss:0:1 --trials 2
hostile "distribution without bounds" 2 "expected uniform:A:B" "${S[@]}" --random optim.lr=uniform --trials 2
hostile "distribution bound not a number" 2 "'x' is not a number" "${S[@]}" --random optim.lr=uniform:x:1 --trials 2
hostile "bounds reversed" 2 "expected A below B" "${S[@]}" --random optim.lr=uniform:1:0.1 --trials 2
hostile "loguniform from 0" 2 "loguniform needs A above 0" "${S[@]}" --random optim.lr=loguniform:0:1 --trials 2
hostile "int with fractions" 2 "int needs whole bounds" "${S[@]}" --random train.batch_size=int:1.5:4 --trials 2
hostile "empty choice" 2 "an empty choice" "${S[@]}" --random model.activation='choice:relu||tanh' --trials 2
hostile "bad choice" 2 "activation" "${S[@]}" --random model.activation='choice:relu|sigmoidal' --trials 4
hostile "random without trials" 2 "random parameters need one" "${S[@]}" --random optim.lr=uniform:0.01:0.1
hostile "trials zero" 2 "--trials '0': expected a number of at least 1" "${S[@]}" "${G[@]}" --trials 0
hostile "trials not a number" 2 "--trials 'many'" "${S[@]}" "${G[@]}" --trials many
hostile "ranks per trial zero" 2 "--ranks-per-trial '0'" "${S[@]}" "${G[@]}" --ranks-per-trial 0
hostile "budget negative" 2 "--budget-seconds '-5'" "${S[@]}" "${G[@]}" --budget-seconds -5
hostile "swept twice" 2 "optim.lr is swept twice" "${S[@]}" "${G[@]}" --random optim.lr=uniform:0.01:0.1 --trials 2
hostile "a key the sweep sets" 2 "train.output: the sweep sets this key" "${S[@]}" --grid train.output=a.h5,b.h5
hostile "checkpoint dir swept" 2 "checkpoint.dir: the sweep sets this key" "${S[@]}" --grid checkpoint.dir=a,b
hostile "asha rungs not growing" 2 "rungs must grow" "${S[@]}" "${G[@]}" --set train.epochs=8 --asha 2,1
hostile "asha rung at the end" 2 "rung 8 is not before train.epochs = 8" "${S[@]}" "${G[@]}" --set train.epochs=8 --asha 2,8
hostile "asha keep above 1" 2 "KEEP must be a fraction" "${S[@]}" "${G[@]}" --set train.epochs=8 --asha 2:1.5
hostile "asha text" 2 "expected rungs in epochs" "${S[@]}" "${G[@]}" --set train.epochs=8 --asha two
hostile "asha with epochs swept" 2 "train.epochs is swept" "${S[@]}" --grid train.epochs=4,8 --asha 2
hostile "bad --set" 2 "unknown key 'epoch' in \[train\]; did you mean train.epochs" "${S[@]}" "${G[@]}" --set train.epoch=3
hostile "missing CONFIG file" 2 "nope.ini" "$T" sweep nope.ini "${G[@]}" -o res
hostile "k does not divide the ranks" 2 "--ranks-per-trial 3 does not divide the job's 2 ranks" \
  "$TSR_MPIEXEC" --oversubscribe --bind-to none -n 2 "$T" sweep small.ini "${G[@]}" --ranks-per-trial 3 -o res
[ ! -e res ] && ok "no refused sweep wrote a result" || { bad "a refused sweep left res/"; ls -R res; rm -rf res; }

# A results directory of another sweep, or one damaged: refused, left as it was.
"$T" sweep small.ini "${G[@]}" -o other >other.log 2>&1 || { bad "the reference sweep failed"; cat other.log; }
remember other/trials.json
hostile "another sweep's directory" 2 "holds another sweep (trial 0 has optim.lr = 0.01 there, 0.02 here)" \
  "$T" sweep small.ini --grid optim.lr=0.02,0.1 -o other
hostile "another sweep's keys" 2 "holds another sweep (2 trials of 1 parameters there, 4 of 2 here)" \
  "$T" sweep small.ini "${G[@]}" --grid optim.momentum=0.5,0.9 -o other
intact "another sweep's directory"
mkdir -p broken && printf '{"trials": [' > broken/trials.json
hostile "damaged trials.json" 3 "broken/trials.json:1:" "$T" sweep small.ini "${G[@]}" -o broken
touch afile
hostile "-o a file" 4 "afile" "$T" sweep small.ini "${G[@]}" -o afile
robust_finish
