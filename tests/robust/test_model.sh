#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Hostile model descriptions and plugins (issue 16): shapes that do not line
# up name the layer and both shapes, a kernel larger than its input, unknown
# layer and argument names with the nearest suggested, token ids that are
# not, plugins that are missing, of another ABI, not plugins at all, or that
# crash in forward on one rank (one clear error, every rank stops, nothing
# written), a plugin layer without an ONNX form exported, checkpoints of
# another architecture.
. "$(dirname "$0")/lib.sh"
fixtures
T=$TSR_BIN
P=$TSR_BUILD/tests/plugins
R1=("$T" train small.ini --set runtime.progress=none)

hostile "unknown layer" 2 'unknown layer "relux" (did you mean relu?) at character 10' \
  "${R1[@]}" --set "model.layers=dense(8) relux dense(3)"
hostile "unknown argument" 2 'conv has no argument "strides" (did you mean stride?)' \
  "${R1[@]}" --set model.input=2x2x2 --set "model.layers=conv(4,1,strides=2) flatten dense(3)"
hostile "missing argument" 2 'dense needs out; expected dense(out)' "${R1[@]}" --set "model.layers=dense dense(3)"
hostile "unbalanced block" 2 'a res{ block is not closed with }' "${R1[@]}" --set "model.layers=res{dense(8) dense(3)"
hostile "residual shapes" 2 'model: the residual block of layers 1-3 gives 4 but its input is 8' \
  "${R1[@]}" --set "model.layers=dense(8) res{dense(4)} dense(3)"
hostile "last layer against the classes" 2 'the last layer, dense(5) (layer 2), gives 5 outputs but .*small.h5 has 3 classes' \
  "${R1[@]}" --set "model.layers=dense(8) relu dense(5)"
hostile "kernel larger than its input" 2 'layer 0 (conv(4,3)) on input 2x2x2: conv: the kernel (3x3, dilation 1: spans 3) is larger than its input 2x2x2 with padding 0' \
  "${R1[@]}" --set model.input=2x2x2 --set "model.layers=conv(4,3) flatten dense(3)"
hostile "pooling window larger than its input" 2 'maxpool: the window 4x4 is larger than its input 2x2x2' \
  "${R1[@]}" --set model.input=2x2x2 --set "model.layers=maxpool(4) flatten dense(3)"
hostile "input shape against the rows" 2 '\[model\] input = 3x3x3 (.*) has 27 values but the rows of small.h5 have 8' \
  "${R1[@]}" --set model.input=3x3x3 --set "model.layers=flatten dense(3)"
hostile "groups that do not divide" 2 'groups = 3 must divide the input.s 2 channels' \
  "${R1[@]}" --set model.input=2x2x2 --set "model.layers=conv(3,1,groups=3) flatten dense(3)"
hostile "token ids that are not" 3 'embed(5, 2): input value 0.* is not a token id in 0..4' \
  "${R1[@]}" --set "model.layers=embed(5,2) flatten dense(3)"
hostile "cross-entropy on one output" 2 'cross-entropy needs at least 2 outputs, the last layer gives 1' "${R1[@]}" --set "model.layers=dense(8) dense(1)"

# Plugins, on two ranks: one error line, every rank stops (a crash on one
# rank: the others stop at the same step's agreement and the crashed rank's
# error is the one reported, exit 1).
M2=("$TSR_MPIEXEC" --oversubscribe --bind-to none -n 2 "$T" train small.ini --set runtime.progress=none
    --set "model.layers=dense(8) crashy dense(3)")
hostile "missing plugin" 2 '\[model\] plugins: plugin /nonexistent/libx.so: no such file' "${M2[@]}" --set model.plugins=/nonexistent/libx.so
hostile "plugin of another ABI" 2 "built for layer ABI version 42, this tessera has version 1" \
  "${M2[@]}" --set model.plugins=$P/libtsr_plugin_wrong_abi.so
hostile "not a plugin" 2 'is not a tessera layer plugin (it lacks tessera_plugin_kinds)' \
  "${M2[@]}" --set model.plugins=$P/libtsr_plugin_no_kinds.so
hostile "a plain file as a plugin" 2 'plugins: .*small.ini: cannot load it' "${M2[@]}" --set model.plugins=$PWD/small.ini
mkdir -p ck
remember small.h5 small.ini
TSR_PLUGIN_CRASH_RANK=1 hostile "plugin crashing in forward on rank 1" 1 \
  'rank 1, step 3: model: layer 1 (crashy), forward: the plugin layer crashy crashed in forward (signal 11' \
  "${M2[@]}" --set model.plugins=$P/libtsr_plugin_crash.so --set checkpoint.dir=ck --set checkpoint.every_steps=1 \
  --set train.output=crash.h5
[ ! -e crash.h5 ] && ok "no model file from the crashed run" || bad "crash.h5 written"
ls ck | grep -q 'ckpt-0000000003' && bad "a checkpoint of the crashed step" || ok "no checkpoint of the crashed step"
intact "plugin crash"

# ONNX export of a plugin kind that gives no ONNX form: one line naming the
# layer and its kind, exit 2, no file.
TSR_PLUGIN_CRASH_RANK=99 "${R1[@]}" --set "model.layers=dense(8) crashy dense(3)" \
  --set model.plugins=$P/libtsr_plugin_crash.so --set train.output=crashy.h5 >/dev/null 2>&1
hostile "export of a plugin layer without an ONNX form" 2 \
  'export: layer 1 .crashy. is a plugin kind without an ONNX form' \
  "$T" export crashy.h5 -o crashy.onnx --plugins $P/libtsr_plugin_crash.so
hostile "export of a plugin model without --plugins" 3 'layer 1: unknown kind "crashy"' "$T" export crashy.h5 -o crashy.onnx
hostile "export --plugins of a missing plugin" 2 'export: --plugins: .*/nonexistent/libx.so: no such file' \
  "$T" export crashy.h5 -o crashy.onnx --plugins /nonexistent/libx.so
[ ! -e crashy.onnx ] && ok "no ONNX file from a refused export" || bad "crashy.onnx written"
hostile "serve of a plugin model without --plugins" 3 'layer 1: unknown kind "crashy"' "$T" serve crashy.h5 --port 0
hostile "serve --plugins of a missing plugin" 2 'serve: --plugins: plugin /nonexistent/libx.so: no such file' \
  "$T" serve crashy.h5 --port 0 --plugins /nonexistent/libx.so
hostile "serve --plugins of another ABI" 2 'serve: --plugins: .*built for layer ABI version 42' \
  "$T" serve crashy.h5 --port 0 --plugins $P/libtsr_plugin_wrong_abi.so

# A checkpoint of another architecture, named by its first differing layer.
"${R1[@]}" --set "model.layers=dense(8) relu dense(3)" --set checkpoint.dir=ck2 --set train.output=a.h5 \
  --set checkpoint.final=true >/dev/null 2>&1
hostile "checkpoint of another architecture" 3 'layer 2 is tanh here and dense(3) there' \
  "${R1[@]}" --set "model.layers=dense(8) relu dense(3)" --set checkpoint.dir=ck3 --set train.output=b.h5 \
  --resume "$(ls ck2/ckpt-*.h5 | tail -1)" --set "model.layers=dense(8) relu tanh dense(3)"
robust_finish
