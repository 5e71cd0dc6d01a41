#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The mixed-precision keys ([train] precision, loss_scale,
# loss_scale_interval, [runtime] comm_precision) against hostile values:
# half precision where training would run on the CPU (device = cpu, or auto
# finding no GPU), unknown types, loss-scaling keys without fp16, scales
# that are not powers of two. Exit 2, one error line naming the key, no
# model written.
. "$(dirname "$0")/lib.sh"
fixtures
T=$TSR_BIN
R=("$T" train small.ini --set train.output=never.h5)

hostile "bf16 on the CPU" 2 "\[train\] precision = bf16 (--set train.precision=bf16) needs runtime.device = cuda .*the CPU trains in fp32 only" \
  "${R[@]}" --set train.precision=bf16
hostile "fp16 on the CPU, device named" 2 "precision = fp16 .* needs runtime.device = cuda" \
  "${R[@]}" --set train.precision=fp16 --set runtime.device=cpu
printf '[data]\npath = test.h5\n[model]\nhidden = 8\n[train]\nepochs = 1\nbatch_size = 4\nprecision = fp16\n' > half.ini
hostile "fp16 from a file names its line" 2 "precision = fp16 (half.ini:8) needs runtime.device = cuda" \
  "$T" train half.ini --set train.output=never.h5
hostile "bf16 with device auto and no GPU" 2 "precision = bf16 .* needs a GPU on every rank, but runtime.device = auto found none" \
  "${R[@]}" --set train.precision=bf16 --set runtime.device=auto
hostile "unknown precision" 2 "precision" "${R[@]}" --set train.precision=fp8
hostile "precision with shell text" 2 "precision" "${R[@]}" --set 'train.precision=bf16$(id)'
hostile "loss_scale without fp16" 2 "\[train\] loss_scale does not apply to train.precision = fp32" \
  "${R[@]}" --set train.loss_scale=1024
hostile "loss_scale_interval with bf16" 2 "loss_scale_interval does not apply to train.precision = bf16" \
  "${R[@]}" --set runtime.device=cuda --set train.precision=bf16 --set train.loss_scale_interval=100
hostile "loss_scale not a power of two" 2 "loss_scale = 3 (--set train.loss_scale=3): expected a power of two" \
  "${R[@]}" --set runtime.device=cuda --set train.precision=fp16 --set train.loss_scale=3
hostile "loss_scale 0" 2 "loss_scale = 0 .*expected a power of two" \
  "${R[@]}" --set runtime.device=cuda --set train.precision=fp16 --set train.loss_scale=0
hostile "loss_scale NaN" 2 "loss_scale" "${R[@]}" --set runtime.device=cuda --set train.precision=fp16 \
  --set train.loss_scale=nan
hostile "loss_scale beyond 2^100" 2 "loss_scale = .*expected a power of two from 1 to 2^100" \
  "${R[@]}" --set runtime.device=cuda --set train.precision=fp16 --set train.loss_scale=1e300
hostile "loss_scale_interval 0" 2 "loss_scale_interval" "${R[@]}" --set runtime.device=cuda \
  --set train.precision=fp16 --set train.loss_scale_interval=0
hostile "unknown comm_precision" 2 "comm_precision" "${R[@]}" --set runtime.comm_precision=fp8
[ -e never.h5 ] && bad "a refused run wrote its model" || ok "no refused run wrote a model"
robust_finish
