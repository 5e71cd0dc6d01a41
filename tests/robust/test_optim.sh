#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# [optim] keys against the choice they are set for: a key the optimizer or
# schedule does not read is refused naming it, its origin and the choice;
# a schedule whose phases exceed the run (10 steps here) is refused naming
# the key; values out of range likewise. Exit 2, one error line, no model.
. "$(dirname "$0")/lib.sh"
fixtures
T=$TSR_BIN
R=("$T" train small.ini --set train.output=never.h5)

# Keys of another optimizer.
hostile "momentum with adamw" 2 "\[optim\] momentum (--set optim.momentum=0.5) does not apply to optim.name = adamw (it takes beta1, beta2, eps)" \
  "${R[@]}" --set optim.name=adamw --set optim.momentum=0.5
hostile "nesterov with lamb" 2 "nesterov .* does not apply to optim.name = lamb" "${R[@]}" --set optim.name=lamb --set optim.nesterov=true
hostile "beta1 with sgd" 2 "beta1 .* does not apply to optim.name = sgd (it takes momentum, nesterov)" "${R[@]}" --set optim.beta1=0.8
hostile "trust_coef with lamb" 2 "trust_coef .* optim.name = lamb" "${R[@]}" --set optim.name=lamb --set optim.trust_coef=0.01
hostile "centered with adam" 2 "centered .* optim.name = adam " "${R[@]}" --set optim.name=adam --set optim.centered=true
hostile "alpha with lion" 2 "alpha .* optim.name = lion (it takes beta1, beta2)" "${R[@]}" --set optim.name=lion --set optim.alpha=0.9
hostile "eps with lion" 2 "eps .* optim.name = lion" "${R[@]}" --set optim.name=lion --set optim.eps=1e-6
hostile "exclude with rmsprop" 2 "exclude .* optim.name = rmsprop" "${R[@]}" --set optim.name=rmsprop --set optim.exclude=none
printf '[data]\npath = small.h5\n[train]\nepochs = 1\nbatch_size = 4\n[optim]\nname = lion\nmomentum = 0.9\n' > file.ini
hostile "a file's key names its line" 2 "momentum (file.ini:8) does not apply to optim.name = lion" "$T" train file.ini

# Keys of another schedule.
hostile "step_size with cosine" 2 "step_size .* does not apply to optim.schedule = cosine (it takes min_lr)" \
  "${R[@]}" --set optim.step_size=3
hostile "milestones with step" 2 "milestones .* optim.schedule = step (it takes step_size, gamma)" \
  "${R[@]}" --set optim.schedule=step --set optim.step_size=2 --set optim.milestones=3
hostile "gamma with constant" 2 "gamma .* optim.schedule = constant (it takes no options)" \
  "${R[@]}" --set optim.schedule=constant --set optim.gamma=0.5
hostile "max_lr with cosine" 2 "max_lr .* optim.schedule = cosine" "${R[@]}" --set optim.max_lr=1
hostile "plateau_patience with onecycle" 2 "plateau_patience .* optim.schedule = onecycle" \
  "${R[@]}" --set optim.schedule=onecycle --set optim.plateau_patience=3
hostile "power with exponential" 2 "power .* optim.schedule = exponential" \
  "${R[@]}" --set optim.schedule=exponential --set optim.power=2
hostile "min_lr with step" 2 "min_lr .* optim.schedule = step" \
  "${R[@]}" --set optim.schedule=step --set optim.step_size=2 --set optim.min_lr=0.01

# Phases past the run (1 epoch of 40 rows in batches of 4: 10 steps).
hostile "milestone past the run" 2 "optim.milestones: 50 is past the run (10 steps after warmup)" \
  "${R[@]}" --set optim.schedule=multistep --set optim.milestones=5,50
hostile "milestone past the run after warmup" 2 "optim.milestones: 8 is past the run (6 steps after warmup)" \
  "${R[@]}" --set optim.schedule=multistep --set optim.milestones=8 --set optim.warmup_steps=4
hostile "warmup longer than the run" 2 "optim.warmup_steps = 11 is longer than the run (10 steps)" \
  "${R[@]}" --set optim.warmup_steps=11
hostile "step_size past the run" 2 "optim.step_size = 100 is past the run" \
  "${R[@]}" --set optim.schedule=step --set optim.step_size=100
hostile "onecycle rise under a step" 2 "optim.pct_start = 0.05: the rise over 10 steps" \
  "${R[@]}" --set optim.schedule=onecycle --set optim.pct_start=0.05
"${R[@]}" --set optim.warmup_steps=20 --set train.max_steps=5 --set train.epochs=3 >cap.log 2>&1 \
  && ok "train.max_steps cutting a run below its warmup is not refused" || { bad "max_steps cut refused"; cat cap.log; }
rm -f never.h5

# Missing, malformed and out-of-range values.
hostile "multistep without milestones" 2 "optim.milestones: expected one or more steps" "${R[@]}" --set optim.schedule=multistep
hostile "milestones not increasing" 2 "optim.milestones: 3: expected increasing steps" \
  "${R[@]}" --set optim.schedule=multistep --set optim.milestones=5,3
hostile "milestones not integers" 2 "milestones" "${R[@]}" --set optim.schedule=multistep --set optim.milestones=2,x
hostile "milestones negative" 2 "milestones" "${R[@]}" --set optim.schedule=multistep --set optim.milestones=-2
hostile "step without step_size" 2 "optim.step_size = 0: expected at least 1" "${R[@]}" --set optim.schedule=step
hostile "onecycle pct_start above 1" 2 "optim.pct_start = 1.5" "${R[@]}" --set optim.schedule=onecycle --set optim.pct_start=1.5
hostile "onecycle div_factor 0" 2 "div_factor = 0" "${R[@]}" --set optim.schedule=onecycle --set optim.div_factor=0
hostile "plateau factor 1" 2 "optim.plateau_factor = 1" "${R[@]}" --set optim.schedule=plateau --set optim.plateau_factor=1
hostile "plateau threshold negative" 2 "plateau_threshold = .-1.: expected a finite number >= 0" \
  "${R[@]}" --set optim.schedule=plateau --set optim.plateau_threshold=-1
hostile "exponential gamma 0" 2 "optim.gamma = 0: expected a value above 0" \
  "${R[@]}" --set optim.schedule=exponential --set optim.gamma=0
hostile "step gamma nan" 2 "gamma" "${R[@]}" --set optim.schedule=step --set optim.step_size=2 --set optim.gamma=nan
hostile "rmsprop alpha 1" 2 "optim.alpha = 1: expected 0 <= alpha < 1" "${R[@]}" --set optim.name=rmsprop --set optim.alpha=1
hostile "lars trust_coef 0" 2 "optim.trust_coef = 0" "${R[@]}" --set optim.name=lars --set optim.trust_coef=0
hostile "lars momentum 1" 2 "momentum = 1 .*: expected a value below 1" "${R[@]}" --set optim.name=lars --set optim.momentum=1
hostile "lion beta2 1" 2 "beta2 = 1" "${R[@]}" --set optim.name=lion --set optim.beta2=1
hostile "unknown optimizer" 2 "sgd|adamw|adam|lion|lamb|lars|rmsprop" "${R[@]}" --set optim.name=adagrad
hostile "unknown schedule" 2 "plateau" "${R[@]}" --set optim.schedule=cyclic
hostile "unknown exclude" 2 "bias_and_norm|none" "${R[@]}" --set optim.name=lars --set optim.exclude=weights
[ -e never.h5 ] && bad "a refused run wrote its model" || ok "no refused run wrote a model"
robust_finish
