#!/bin/sh
# Rebuilds docs/SCALING.md from its hand-written parts and the model's
# tables over docs/scaling/sim.tsv (and validate.tsv when present).
d=$(dirname "$0")
{
  cat "$d/head.md"
  /usr/bin/python3 "$d/../../tests/bench/scale_model.py" "$d" --fit-ranks 16,32,64 --step-ms mlp=2.01,cnn=24.5
  cat "$d/tail.md"
} > "$d/../SCALING.md"
