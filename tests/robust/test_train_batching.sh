#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The batch shape and evaluation keys ([train] accumulate_steps,
# global_batch, eval_every, early_stop_*, keep_best, and optim.schedule =
# plateau, which watches the test loss, and reproducible = world) against hostile values: exit 2, one
# error line naming the key and what would do, no model written.
. "$(dirname "$0")/lib.sh"
fixtures
T=$TSR_BIN
R=("$T" train small.ini --set train.output=never.h5)

hostile "accumulate_steps 0" 2 "accumulate_steps = '0': expected an integer from 1 to 65536" "${R[@]}" --set train.accumulate_steps=0
hostile "accumulate_steps huge" 2 "accumulate_steps" "${R[@]}" --set train.accumulate_steps=99999999999999999999
hostile "accumulate_steps text" 2 "accumulate_steps" "${R[@]}" --set 'train.accumulate_steps=4$(id)'
hostile "global batch not a multiple" 2 "global_batch = 10 .* is not a multiple of 1 ranks x batch_size 4 = 4; the nearest valid global batches are 8 or 12" \
  "${R[@]}" --set train.global_batch=10
hostile "global batch below one micro-batch" 2 "the nearest valid global batches are 4 " "${R[@]}" --set train.global_batch=3
hostile "global batch and accumulate_steps" 2 "set one of them" "${R[@]}" --set train.global_batch=8 --set train.accumulate_steps=2
hostile "global batch beyond the data" 2 "exceeds the 40 rows" "${R[@]}" --set train.global_batch=400
hostile "global batch needing too many micro-batches" 2 "at most 65536" "${R[@]}" --set train.batch_size=1 \
  --set train.global_batch=1000000
hostile "global batch negative" 2 "global_batch" "${R[@]}" --set train.global_batch=-8
hostile "eval_every negative" 2 "eval_every" "${R[@]}" --set train.eval_every=-1
hostile "patience without evaluation" 2 "early_stop_patience .* train.eval = false" "${R[@]}" \
  --set train.early_stop_patience=2 --set train.eval=false
printf '[data]\npath = test.h5\n[model]\nhidden = 8\n[train]\nepochs = 1\nbatch_size = 4\nkeep_best = true\n' > notest.ini
hostile "keep_best without a test split" 2 "keep_best (notest.ini:8) watches the test split, but this run has none" \
  "$T" train notest.ini --set train.output=never.h5
hostile "plateau without a test split" 2 "\[optim\] schedule .* watches the test split" \
  "$T" train notest.ini --set train.output=never.h5 --set train.keep_best=false --set optim.schedule=plateau
hostile "min_delta negative" 2 "early_stop_min_delta" "${R[@]}" --set train.early_stop_patience=2 --set train.early_stop_min_delta=-0.1
hostile "min_delta NaN" 2 "early_stop_min_delta" "${R[@]}" --set train.early_stop_patience=2 --set train.early_stop_min_delta=nan
hostile "unknown metric" 2 "early_stop_metric" "${R[@]}" --set train.early_stop_metric=f1
hostile "reproducible misspelt" 2 "reproducible = 'worlds'.*world" "${R[@]}" --set train.reproducible=worlds
hostile "reproducible world, no global batch" 2 "reproducible = world .* needs \[train\] global_batch" "${R[@]}" \
  --set train.reproducible=world
hostile "reproducible world, 3 micro-batches" 2 "global_batch / batch_size = 3 micro-batches and 1 ranks; both must be powers of two" \
  "${R[@]}" --set train.reproducible=world --set train.global_batch=12
hostile "reproducible world, nccl" 2 "comm = nccl .* NCCL sums in an order of its own" "${R[@]}" --set train.reproducible=world \
  --set train.global_batch=8 --set runtime.comm=nccl
hostile "reproducible world, alltoall" 2 "allreduce_algorithm = alltoall" "${R[@]}" --set train.reproducible=world \
  --set train.global_batch=8 --set runtime.allreduce_algorithm=alltoall
[ -e never.h5 ] && bad "a refused run wrote its model" || ok "no refused run wrote a model"
robust_finish
