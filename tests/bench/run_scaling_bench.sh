#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Weak scaling of training on one node (issue 6): the 784-256-256-10 ReLU MLP
# on Fashion-MNIST (Debian's dataset-fashion-mnist, converted to HDF5 here) at
# the same batch per rank, 1 rank against NP ranks, with the real program:
#   efficiency = samples/s on NP ranks / (NP x samples/s on 1 rank)
# (target >= 0.90). samples/s is the done line's figure: training steps only,
# set-up and evaluation excluded. Runs alternate (1, NP, 1, NP, ...) so load
# drifts hit both; medians of REPS runs each. The comm line of each NP-rank
# run (blocking allreduce time, exposed and hidden reduction per step) is
# printed for the median run.
# Each rank gets the same resources at 1 and at NP ranks: one BLAS thread
# and no prefetch thread (--per-rank-cores 0 drops both settings: then a
# lone rank also uses the node's idle cores, for BLAS threads by default and
# for its prefetch thread, which is the comparison against the best
# single-rank run rather than weak scaling).
#
# --config picks another tests/bench .ini, e.g. --config fashion_cnn.ini for
# the CNN of issue 16 (same target; fewer --steps keep it affordable).
#
# Usage: tests/bench/run_scaling_bench.sh [BUILD_DIR] [--np N] [--reps N] [--steps S] [--batch B] [--per-rank-cores 1|0]
#                                         [--config INI] [-- extra tessera train options]
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$here/fashion_h5.sh"
root=$(cd "$here/../.." && pwd)
build=build np=2 reps=5 steps=600 batch=128 extra=() fixed=1 config=fashion.ini
while [ $# -gt 0 ]; do
  case $1 in
    --np) np=$2; shift 2 ;;
    --reps) reps=$2; shift 2 ;;
    --steps) steps=$2; shift 2 ;;
    --batch) batch=$2; shift 2 ;;
    --per-rank-cores) fixed=$2; shift 2 ;;
    --config) config=$2; shift 2 ;;
    --) shift; extra=("$@"); break ;;
    -h|--help) sed -n '2,22p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "run_scaling_bench.sh: unknown option $1" >&2; exit 2 ;;
    *) build=$1; shift ;;
  esac
done
case $build in /*) ;; *) build=$root/$build ;; esac
# --config: a path as given, else a name under tests/bench
if [ -f "$config" ]; then config=$(cd "$(dirname "$config")" && pwd)/$(basename "$config")
elif [ -f "$here/$config" ]; then config=$here/$config
else echo "run_scaling_bench.sh: --config $config: no such file (as given or under $here)" >&2; exit 2; fi
[ "$fixed" = 1 ] && extra=(--set runtime.blas_threads=1 --set data.prefetch=false "${extra[@]}")
tessera=$build/tessera
[ -x "$tessera" ] || { echo "run_scaling_bench.sh: $tessera not found; build first" >&2; exit 1; }
echo "per rank: ${extra[*]:-the defaults (a lone rank may use idle cores)}"
mpirun=$(command -v mpirun || command -v mpiexec)
flags=(--oversubscribe --bind-to none)
[ "$(id -u)" -eq 0 ] && flags+=(--allow-run-as-root)
tmp=$(mktemp -d "$build/scaling.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
fashion_h5 "$tessera" "$tmp/fashion.h5" || exit 1
cd "$tmp"
run() { # run NP: prints samples/s, saves the log
  "$mpirun" "${flags[@]}" -n "$1" "$tessera" train "$config" --set data.path="$tmp/fashion.h5" \
    --set train.output="$tmp/m.h5" --set train.batch_size="$batch" --set train.epochs=100 \
    --set train.max_steps="$steps" --set train.eval=false --set train.register=false \
    --set checkpoint.final=false --set runtime.progress=none "${extra[@]}" >"$tmp/log.$1.$2" 2>&1 || {
    echo "run_scaling_bench.sh: tessera train on $1 rank(s) failed; its log ends:" >&2
    tail -5 "$tmp/log.$1.$2" >&2
    exit 1
  }
  sed -n 's/.*| \([0-9]*\) samples\/s.*/\1/p' "$tmp/log.$1.$2"
}
s1=() sn=()
run 1 warm >/dev/null
for r in $(seq 1 "$reps"); do
  s1+=("$(run 1 "$r")")
  sn+=("$(run "$np" "$r")")
  echo "round $r: 1 rank ${s1[-1]} samples/s, $np ranks ${sn[-1]} samples/s" >&2
done
python3 - "$np" "${s1[*]}" "${sn[*]}" "$batch" "$config" <<'PY'
import os, statistics, sys
np_ = int(sys.argv[1]); s1 = [float(v) for v in sys.argv[2].split()]; sn = [float(v) for v in sys.argv[3].split()]
m1, mn = statistics.median(s1), statistics.median(sn)
name = os.path.basename(sys.argv[5])
net = "MLP 784-256-256-10" if name == "fashion.ini" else name
print(f"weak scaling, {net}, batch {sys.argv[4]} per rank: 1 rank {m1:.0f} samples/s, "
      f"{np_} ranks {mn:.0f} samples/s: efficiency {mn / (np_ * m1):.2f} (target >= 0.90); per round: "
      + ", ".join(f"{b / (np_ * a):.2f}" for a, b in zip(s1, sn)))
PY
grep -h 'comm .*blocking allreduce' "$tmp"/log."$np".* | tail -1 | sed 's/$/\n/' 
