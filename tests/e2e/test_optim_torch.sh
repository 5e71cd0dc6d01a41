#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Each optimizer's first 100 steps against its reference to 1e-5 (PyTorch
# 1.13's torch.optim; torchlars' rule for LARS; NumPy transcriptions of the
# papers for Lion and LAMB), fed tessera's gradients of a small MLP; each
# schedule's lr over 100 steps against torch.optim.lr_scheduler.
. "$(dirname "$0")/lib.sh"
TRACE="${TSR_BUILD:?}/tests/optim_trace"
CMP="$TSR_SRC/tests/torch/compare_optim.py"
$PY -c 'import torch' 2>/dev/null || { echo "python3-torch is missing (scripts/install-deps.sh)"; exit 1; }

N=0
case_() { # case_ weights|lr KEY=VALUE...: a trace in cN/, compared below
  local kind=$1; shift
  N=$((N + 1)); mkdir "c$N"
  printf '%s\n' "$kind" 100 "$@" > "c$N/args"
  if [ "$kind" = lr ]; then "$TRACE" --lr "c$N" 100 "$@"; else "$TRACE" "c$N" 100 "$@"; fi || bad "optim_trace $*"
}
weights() { case_ weights optim.schedule=constant "$@"; }
lr() { case_ lr "$@"; }

weights optim.name=sgd optim.lr=0.1 optim.weight_decay=0.01
weights optim.name=sgd optim.lr=0.1 optim.nesterov=true
weights optim.name=adamw optim.lr=0.01 optim.weight_decay=0.1
weights optim.name=adam optim.lr=0.01 optim.weight_decay=0.1
weights optim.name=rmsprop optim.lr=0.001
weights optim.name=rmsprop optim.lr=0.01 optim.weight_decay=0.01 optim.momentum=0.5 optim.centered=true
weights optim.name=lars optim.lr=1 optim.weight_decay=0.001 optim.trust_coef=0.02
weights optim.name=lars optim.lr=1 optim.weight_decay=0.001 optim.trust_coef=0.02 optim.exclude=none optim.momentum=0
weights optim.name=lion optim.lr=0.001 optim.weight_decay=0.1
weights optim.name=lamb optim.lr=0.01 optim.weight_decay=0.01
weights optim.name=lamb optim.lr=0.01 optim.weight_decay=0.01 optim.exclude=none optim.beta2=0.99

lr optim.schedule=cosine optim.min_lr=0.001
lr optim.schedule=cosine optim.warmup_steps=10
lr optim.schedule=step optim.step_size=7 optim.gamma=0.5
lr optim.schedule=step optim.step_size=7 optim.gamma=0.5 optim.warmup_steps=5
lr optim.schedule=multistep optim.milestones=10,30,60 optim.gamma=0.3
lr optim.schedule=exponential optim.gamma=0.97 optim.warmup_steps=1
lr optim.schedule=polynomial optim.power=2 optim.warmup_steps=20
lr optim.schedule=onecycle optim.max_lr=0.5 optim.pct_start=0.25
lr optim.schedule=onecycle optim.warmup_steps=10
lr optim.schedule=plateau optim.plateau_patience=2 optim.plateau_factor=0.5 optim.plateau_cooldown=1 optim.min_lr=0.01
lr optim.schedule=plateau optim.plateau_patience=0 optim.plateau_threshold=0.01
out=$($PY "$CMP" c*); rc=$?
echo "$out"
n_ok=$(grep -c '^ok: ' <<<"$out")
[ $rc -eq 0 ] && [ "$n_ok" -eq $N ] && ok "all $N agree with the reference" || bad "$((N - n_ok)) of $N differ"
finish
