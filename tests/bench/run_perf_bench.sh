#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Overhead of monitoring (issue 17): the digits run on 2 ranks with the
# coordinator on (publishing at every epoch end, as digits.ini logs), alternately with
# [monitor] perf = false ("off"), perf = true ("on": phase timers at every
# phase switch, resource sampling and the counters' gather at every publish)
# and perf = true with a PAPI event read at every phase switch ("papi":
# sde:::tessera::steps, the one event this machine can count; hardware
# events cost what the kernel's perf_event read costs where they exist).
# A run's step time = the median over its epochs of global batch / the
# epoch's samples per second (robust to another job's burst on a shared
# machine). Prints the median step time of each variant, its spread over
# runs, and each variant's ratio to "off" from the same round (median and
# quartiles). bench_perf measures the same costs per call.
#
# --fashion: the Fashion-MNIST MLP instead (tests/bench/fashion.ini, batch
# 128 per rank, one BLAS thread, coordinator off as users run it; the
# converted dataset from fashion_h5.sh, or FASHION_H5). Both runs have a
# fourth variant "all": perf on and the timeline ([monitor] trace) too.
#
# --variants off,all runs only those (the target's pair, so more rounds fit
# in the same time). Within a round the order alternates (off first in odd
# rounds, last in even ones), so a drift of the machine's speed over a round
# does not land on one variant; the ratio's median comes with a 95%
# bootstrap interval over rounds.
#
# Usage: tests/bench/run_perf_bench.sh [BUILD_DIR] [--rounds R] [--epochs E] [--ranks N] [--fashion]
#          [--variants off,on,papi,all]
#   defaults: build, 15 rounds, 120 epochs (5280 steps), 2 ranks, all four variants; --fashion: 3 epochs
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
build=build rounds=15 epochs= ranks=2 fashion=0 only=off,on,papi,all
while [ $# -gt 0 ]; do
  case $1 in
    --rounds) rounds=$2; shift 2 ;;
    --epochs) epochs=$2; shift 2 ;;
    --ranks) ranks=$2; shift 2 ;;
    --fashion) fashion=1; shift ;;
    --variants) only=$2; shift 2 ;;
    -h|--help) sed -n '2,29p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "run_perf_bench.sh: unknown option $1" >&2; exit 2 ;;
    *) build=$1; shift ;;
  esac
done
case $build in /*) ;; *) build=$root/$build ;; esac
bin=$build/tessera
[ -x "$bin" ] || { echo "run_perf_bench.sh: $bin not found; build first" >&2; exit 1; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
export OPENBLAS_NUM_THREADS=1
work=$(mktemp -d "${TMPDIR:-/tmp}/tessera-perfbench.XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work"
variants=(off on papi)
declare -A extra=([off]="--set monitor.perf=false" [on]="--set monitor.perf=true"
                  [papi]="--set monitor.perf=true --set monitor.papi_events=sde:::tessera::steps")
if ((fashion)); then
  # shellcheck source=fashion_h5.sh
  . "$here/fashion_h5.sh"
  data=${FASHION_H5:-$work/fashion.h5}
  [ -f "$data" ] || fashion_h5 "$bin" "$data" || exit 1
  conf=$root/tests/bench/fashion.ini batch=128 epochs=${epochs:-3}
  common=(--set "data.path=$data" --set train.batch_size=128 --set runtime.blas_threads=1)
else
  cp "$root/examples/digits.ini" . && mkdir -p data && cp "$root/examples/data/digits.h5" data/
  conf=digits.ini batch=16 epochs=${epochs:-120} # digits.ini: batch_size 16 per rank
  common=(--set serve.enabled=true)
fi
# "all": perf on and the timeline too, everything issue 17's 1% covers.
extra[all]="--set monitor.perf=true --set monitor.trace=$work/trace.json"
variants+=(all)
picked=()
for v in ${only//,/ }; do
  [ -n "${extra[$v]:-}" ] || { echo "run_perf_bench.sh: --variants: unknown variant $v (off, on, papi, all)" >&2; exit 2; }
  picked+=("$v")
done
[[ " ${picked[*]} " == *" off "* ]] || { echo "run_perf_bench.sh: --variants must include off" >&2; exit 2; }
variants=("${picked[@]}")
common+=(--set "train.epochs=$epochs" --set runtime.progress=lines --set train.register=false
         --set checkpoint.final=false --set checkpoint.every_seconds=0 --set "train.output=$work/model.h5")
out=results.txt
: >"$out"
for ((r = 1; r <= rounds; r++)); do
  order=("${variants[@]}")
  if ((r % 2 == 0)); then
    order=()
    for ((i = ${#variants[@]} - 1; i >= 0; i--)); do order+=("${variants[i]}"); done
  fi
  for v in "${order[@]}"; do
    # shellcheck disable=SC2086
    rate=$(mpiexec --bind-to none -n "$ranks" "$bin" train "$conf" "${common[@]}" ${extra[$v]} 2>&1 |
      sed -nE 's/.*epoch [0-9]+\/[0-9]+ train loss .* ([0-9.]+) samples\/s$/\1/p' | sort -n |
      awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}')
    echo "$r $v $rate" >>"$out"
    echo "round $r/$rounds $v: median epoch $rate samples/s" >&2
  done
done
/usr/bin/python3 - "$out" "$ranks" "$batch" "$(((fashion)) && echo Fashion-MNIST MLP || echo digits)" <<'PY'
import random, statistics as st, sys
rows = [l.split() for l in open(sys.argv[1])]
batch = int(sys.argv[3]) * int(sys.argv[2])
step = {}  # variant -> {round: step time in us}
for r, v, rate in rows:
    step.setdefault(v, {})[int(r)] = batch / float(rate) * 1e6
def q(xs):
    qs = st.quantiles(xs, n=4) if len(xs) > 1 else [xs[0]] * 3
    return qs[0], qs[2]
print(f"{'variant':8} {'median step':>12} {'min':>8} {'max':>8}   ratio to off, same round: median [q1, q3]")
for v in [v for v in ("off", "on", "papi", "all") if v in step]:
    xs = list(step[v].values())
    line = f"{v:8} {st.median(xs):9.1f} us {min(xs):8.1f} {max(xs):8.1f}"
    if v != "off":
        ratios = [step[v][r] / step["off"][r] for r in step[v] if r in step["off"]]
        lo, hi = q(ratios)
        rng = random.Random(1)
        boot = sorted(st.median(rng.choices(ratios, k=len(ratios))) for _ in range(2000))
        line += (f"   {st.median(ratios):.4f} [{lo:.4f}, {hi:.4f}]  ({(st.median(ratios) - 1) * 100:+.2f}%;"
                 f" 95% CI {(boot[50] - 1) * 100:+.2f}%..{(boot[1949] - 1) * 100:+.2f}%)")
    print(line)
print(f"{len(step['off'])} rounds; each run: the median epoch's step time; the {sys.argv[4]} run, {sys.argv[2]} ranks")
PY
