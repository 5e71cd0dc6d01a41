#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The timeline's cost and the phase timers' coverage on the digits example:
# 1-rank and 2-rank runs with [monitor] trace off and on, alternated (off, on, off, on,
# ...) so load drifts hit both; each run's mean step time from its
# bottleneck report (start-up, evaluation and the end's file writes are
# not steps), ratios per adjacent pair, medians and spread. The phase
# timers run in both (they are always on): their own cost is the clock
# reads per step, timed here too. From the traced runs: the phase sums
# against the steps' spans in the trace.
# Builds nothing: build first.
#
# Usage: tests/bench/run_trace_bench.sh [BUILD_DIR] [--pairs N] [--epochs E]
#   BUILD_DIR  the build tree (default: build)   --pairs  off/on pairs (default 7)
#   --epochs   digits epochs per run (default 20)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
build=build pairs=7 epochs=20
while [ $# -gt 0 ]; do
  case $1 in
    --pairs) pairs=$2; shift 2 ;;
    --epochs) epochs=$2; shift 2 ;;
    -h|--help) sed -n '2,15p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "run_trace_bench.sh: unknown option $1" >&2; exit 2 ;;
    *) build=$1; shift ;;
  esac
done
case $build in /*) ;; *) build=$root/$build ;; esac
bin=$build/tessera
[ -x "$bin" ] || { echo "run_trace_bench.sh: $bin not found; build first" >&2; exit 1; }
. "$root/scripts/env.sh"
work=$(mktemp -d "${TMPDIR:-/tmp}/tessera-trace-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
cp "$root/examples/digits.ini" "$work/" && mkdir -p "$work/data" && cp "$root/examples/data/digits.h5" "$work/data/"
cd "$work"
export OPENBLAS_NUM_THREADS=1
run() { # run off|on I (NP from the loop)
  local extra=()
  [ "$1" = on ] && extra=(--set "monitor.trace=t$2/trace.json")
  mpirun -n "$np" --bind-to none "$bin" train digits.ini --set train.epochs="$epochs" --set runtime.progress=none \
    --set train.output="m$2.h5" --set train.register=false "${extra[@]}" >"$1$2.log" 2>&1
}
# What one clock read (CLOCK_MONOTONIC, as tsr_time_now) costs here.
cat >clock.c <<'C'
#include <stdio.h>
#include <time.h>
int main(void) {
    struct timespec a, b, t;
    double s = 0;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (int i = 0; i < 10000000; i++) { clock_gettime(CLOCK_MONOTONIC, &t); s += t.tv_nsec; }
    clock_gettime(CLOCK_MONOTONIC, &b);
    printf("%.2f\n", ((b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec)) / 1e7 + 0 * s);
    return 0;
}
C
cc -O2 clock.c -o clock && ./clock >clock.txt
# What recording one event costs (bench_trace: medians of 9 runs of 2^20 events).
"$build/tests/bench/bench_trace" >event.json
for np in 1 2; do
mkdir -p "np$np" && cd "np$np" && cp -r ../digits.ini ../data .
for ((i = 1; i <= pairs; i++)); do
  echo "$np ranks: pair $i/$pairs" >&2
  if ((i % 2)); then run off "$i"; run on "$i"; else run on "$i"; run off "$i"; fi
done
/usr/bin/python3 - "$pairs" "$epochs" "$np" ../clock.txt ../event.json <<'PY'
import json, re, statistics as st, sys
pairs, epochs, np = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
def step_ms(log):  # the bottleneck report's mean step (phase timers, on in both)
    return float(re.search(r"mean step ([0-9.]+) ms", open(log).read()).group(1))
off = [step_ms("off%d.log" % i) for i in range(1, pairs + 1)]
on = [step_ms("on%d.log" % i) for i in range(1, pairs + 1)]
ratio = [b / a for a, b in zip(off, on)]
q = st.quantiles(ratio, n=4) if len(ratio) > 1 else [ratio[0]] * 3
print(f"digits, {np} rank(s), {epochs} epochs, {pairs} off/on pairs (alternated); mean step time of each run")
print("  step ms, trace off: " + ", ".join(f"{v:.4f}" for v in off))
print("  step ms, trace on:  " + ", ".join(f"{v:.4f}" for v in on))
print(f"  median off {st.median(off):.4f} ms, on {st.median(on):.4f} ms")
print(f"  on/off per pair: median {st.median(ratio):.4f} (quartiles {q[0]:.4f}..{q[2]:.4f}, "
      f"range {min(ratio):.4f}..{max(ratio):.4f}); overhead {100 * (st.median(ratio) - 1):+.2f}% (target <= 1%)")
cov, per_step = [], []
for i in range(1, pairs + 1):
    for r in range(np):  # the phases (cat "step") against their step's span
        ev = json.load(open(f"t{i}/trace.rank{r}.json"))["traceEvents"]
        stack, ph, steps, n = {}, 0.0, 0.0, 0
        marks = sum(1 for e in ev if e["ph"] == "b")
        ats = sum(1 for e in ev if e["ph"] in "BEe")
        for e in ev:
            if e["ph"] == "B":
                stack.setdefault(e["tid"], []).append(e)
            elif e["ph"] == "E":
                b = stack[e["tid"]].pop()
                d = e["ts"] - b["ts"]
                if b["name"] == "step":
                    steps += d; n += 1
                elif b["cat"] == "step":
                    ph += d
        cov.append(ph / steps)
        per_step.append((ats / n, marks / n))
print(f"  phase sums / step spans in the traces: median {100 * st.median(cov):.3f}% "
      f"(range {100 * min(cov):.3f}..{100 * max(cov):.3f}%, {len(cov)} rank-runs; target within 2%)")
ev = json.load(open(sys.argv[5]))
ats, marks = st.median(a for a, _ in per_step), st.median(m for _, m in per_step)
cost = ats * ev["event_at_ns"] + marks * ev["mark_ns"]
print(f"  recording: {ats:.1f} events at a clock already read ({ev['event_at_ns']:.1f} ns each, runs "
      f"{ev['event_at_range'][0]:.1f}..{ev['event_at_range'][1]:.1f}) + {marks:.1f} reading the clock "
      f"({ev['mark_ns']:.1f} ns) per step = {cost:.0f} ns = {100 * cost / (st.median(off) * 1e6):.3f}% of the "
      f"{st.median(off):.4f} ms step (the timeline's cost on the step, from the event cost)")
ns = float(open(sys.argv[4]).read())
step = st.median(off)
print(f"  phase timers (on in both): 7 clock reads per step at {ns:.1f} ns = {7 * ns / (step * 1e6) * 100:.4f}% "
      f"of the {step:.4f} ms step")
PY
cd ..
done
