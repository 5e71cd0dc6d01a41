#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The layer graph on a GPU against hostile models (the program on the CPU
# CUDA emulator, tests/cudaemu, which registers this script as
# robust.test_gpu_layers): a plugin layer without GPU functions, layers and
# losses that have no bf16/fp16 kernels, token ids that are not, on the
# GPU path. Exit 2 (3 for the data), one error line naming the layer, no
# model written.
. "$(dirname "$0")/lib.sh"
fixtures
T=$TSR_CUDAEMU_BIN
P=$TSR_BUILD/tests/plugins
G=("$T" train small.ini --set runtime.progress=none --set runtime.device=cuda --set train.output=never.h5)

hostile "plugin layer without GPU functions" 2 \
  'layer 1 (crashy, from .*libtsr_plugin_crash.so) has no GPU functions (gpu_forward and gpu_backward); add them to the plugin or train with runtime.device = cpu' \
  "${G[@]}" --set model.plugins=$P/libtsr_plugin_crash.so --set "model.layers=dense(8) crashy dense(3)"
hostile "bf16 with a convolution" 2 'layer 0 (conv) has no bf16 GPU kernels .*use train.precision = fp32 for this model' \
  "${G[@]}" --set train.precision=bf16 --set model.input=2x2x2 --set "model.layers=conv(4,1) flatten dense(3)"
hostile "fp16 with batch norm" 2 'layer 1 (bn) has no fp16 GPU kernels' \
  "${G[@]}" --set train.precision=fp16 --set "model.layers=dense(8) bn relu dense(3)"
hostile "fp16 with label smoothing" 2 'the loss cross_entropy with label smoothing or class weights has no fp16 GPU kernels' \
  "${G[@]}" --set train.precision=fp16 --set model.label_smoothing=0.1
hostile "token ids that are not, on the GPU" 3 'embed(5, 2): input value 0.* is not a token id in 0..4' \
  "${G[@]}" --set "model.layers=embed(5,2) flatten dense(3)"
[ -e never.h5 ] && bad "a refused run wrote its model" || ok "no refused run wrote a model"
robust_finish
