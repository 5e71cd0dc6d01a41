#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Task farm benchmarks, each against peers measured in the same run,
# alternating, medians with the spread (min-max) over --rounds:
#   shell    tasks/s of `true` and of a 10 ms sleep on 2 ranks (journal on)
#            against `parallel -j 2` and `xargs -P 2` on the same list
#   restart  a journal of 1M tasks, half done: from launch to the first
#            remaining task started, against GNU parallel --resume on a
#            joblog of the same state
#   balance  2000 heavy-tailed (Pareto) sleeps on 2 ranks: makespan over
#            the ideal max(sum/cores, longest), with parallel and xargs; and
#            the same durations as C tasks (bench_tasks --balance: no
#            process start-up, the scheduler alone)
#   crash    tests/robust/test_tasks_crash.sh with 20 kills
#   inproc   bench_tasks: empty C tasks on one rank (vs OpenMP tasks) and
#            across 2 ranks, memory per queued task
#
#   tests/bench/run_tasks_bench.sh [BUILD_DIR] [--rounds 3] [--only shell,restart,...]
# Needs GNU parallel (TESSERA_DEPS_BENCH=1 scripts/install-deps.sh).
set -u
BUILD=build
ROUNDS=3
ONLY=shell,restart,balance,crash,inproc
while [ $# -gt 0 ]; do
  case $1 in
    --rounds) ROUNDS=$2; shift ;;
    --only) ONLY=$2; shift ;;
    -*) echo "run_tasks_bench.sh: unknown option $1" >&2; exit 2 ;;
    *) BUILD=$1 ;;
  esac
  shift
done
SRC=$(cd "$(dirname "$0")/../.." && pwd)
[ -x "$BUILD/tessera" ] || { echo "run_tasks_bench.sh: $BUILD/tessera not found; build first" >&2; exit 1; }
BUILD=$(cd "$BUILD" && pwd)
T=$BUILD/tessera
PY=/usr/bin/python3
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
command -v parallel >/dev/null || { echo "GNU parallel is missing: TESSERA_DEPS_BENCH=1 scripts/install-deps.sh"; exit 1; }
W=$(mktemp -d "${TMPDIR:-/tmp}/tessera-tasks-bench.XXXXXX")
trap 'rm -rf "$W"' EXIT
cd "$W" || exit 1
want() { [[ ",$ONLY," == *",$1,"* ]]; }
secs() { local t0=$EPOCHREALTIME; "$@" >/dev/null 2>&1; awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.4f", b - a }'; }
# stats V...: "median min max" of the values
stats() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { printf "%s %s %s", v[int((NR + 1) / 2)], v[1], v[NR] }'; }
tessera2() { mpirun --oversubscribe --bind-to none -n 2 "$T" tasks run "$@" --progress 0; }
echo "tessera task farm benchmarks on $(nproc) cores, $(uptime | sed 's/.*load/load/')"

if want shell; then
  for kind in true sleep; do
    if [ $kind = true ]; then n=3000; cmd=true; else n=600; cmd="sleep 0.01"; fi
    for i in $(seq $n); do echo "$cmd"; done > list.txt
    tt=(); tp=(); tx=()
    for r in $(seq "$ROUNDS"); do
      rm -rf j
      tt+=("$(secs tessera2 list.txt --journal j)")
      tp+=("$(secs sh -c 'parallel --will-cite -j 2 < list.txt')")
      tx+=("$(secs sh -c "tr '\\n' '\\0' < list.txt | xargs -0 -P 2 -n 1 sh -c")")
    done
    rm -rf j
    inner=$(tessera2 list.txt --journal j 2>&1 | sed -n 's/.*done after \([0-9.]*\) s.*/\1/p')
    read -r mt lt ht <<< "$(stats "${tt[@]}")"; read -r mp lp hp <<< "$(stats "${tp[@]}")"; read -r mx lx hx <<< "$(stats "${tx[@]}")"
    best=$(awk -v p="$mp" -v x="$mx" 'BEGIN { print (p < x ? p : x) }')
    awk -v n=$n -v k="$kind" -v mt="$mt" -v lt="$lt" -v ht="$ht" -v mp="$mp" -v lp="$lp" -v hp="$hp" -v mx="$mx" \
        -v lx="$lx" -v hx="$hx" -v b="$best" -v inn="$inner" 'BEGIN {
      printf "shell %-5s %d tasks, 2 slots: tessera %.0f/s (%.0f-%.0f) | parallel -j 2 %.0f/s (%.0f-%.0f) | xargs -P 2 %.0f/s (%.0f-%.0f)\n",
        k, n, n/mt, n/ht, n/lt, n/mp, n/hp, n/lp, n/mx, n/hx, n/lx
      printf "shell %-5s ratio tessera / best peer: %.2f (wall clock, mpirun start-up included); %.2f counting the farm'"'"'s own %.2f s\n",
        k, b/mt, b/inn, inn }'
  done
fi

if want restart; then
  n=1000000; half=500000
  { for i in $(seq $half); do echo true; done; echo "touch STARTED"; for i in $(seq $((n - half - 1))); do echo true; done; } > big.txt
  "$BUILD/tests/bench/bench_tasks" --make-journal jr0 $n $half
  $PY - $half > joblog0 <<'PY'
import sys
half = int(sys.argv[1])
out = ["Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal\tCommand"]
out += ["%d\t:\t1700000000.000\t0.001\t0\t0\t0\t0\ttrue" % i for i in range(1, half + 1)]
print("\n".join(out))
PY
  first() { # CMD...: seconds from launch until STARTED exists, then the command is stopped
    rm -f STARTED
    local t0=$EPOCHREALTIME
    "$@" >first.log 2>&1 &
    local p=$!
    until [ -e STARTED ] || ! kill -0 $p 2>/dev/null; do sleep 0.005; done
    local t1=$EPOCHREALTIME
    kill -TERM $p 2>/dev/null; wait $p 2>/dev/null
    awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }'
  }
  rt=(); rp=(); rr=()
  for r in $(seq "$ROUNDS"); do
    rm -rf jr && cp -r jr0 jr
    rt+=("$(first mpirun --oversubscribe --bind-to none -n 2 "$T" tasks run big.txt --journal jr --progress 0)")
    rr+=("$(sed -n 's/.*replayed in \([0-9.]*\) s.*/\1/p' first.log | head -1)")
    cp joblog0 joblog
    rp+=("$(first parallel --will-cite -j 2 --resume --joblog joblog -a big.txt)")
  done
  read -r mt lt ht <<< "$(stats "${rt[@]}")"; read -r mp lp hp <<< "$(stats "${rp[@]}")"
  read -r mr lr hr <<< "$(stats "${rr[@]}")"
  echo "restart: 1M tasks, 500k done: tessera back to dispatching in $mt s ($lt-$ht; mpirun start-up included;" \
       "the journal and task file replayed in $mr s, $lr-$hr) |" \
       "parallel --resume $mp s ($lp-$hp); ratio parallel / tessera $(awk -v a="$mp" -v b="$mt" 'BEGIN { printf "%.1f", a / b }')"
fi

if want balance; then
  $PY - > durations.txt <<'PY'
import random
random.seed(7)
# Pareto, alpha 1.5, mean about 25 ms, the tail cut at 1.5 s
d = [min(1.5, 0.025 / 3 * random.paretovariate(1.5)) for _ in range(2000)]
print("\n".join("%.4f" % x for x in d))
PY
  sed 's/^/sleep /' durations.txt > heavy.txt
  ideal=$(awk '{ s += $1; if ($1 > m) m = $1 } END { printf "%.3f", (s / 2 > m ? s / 2 : m) }' durations.txt)
  bt=(); bp=(); bx=()
  for r in $(seq "$ROUNDS"); do
    bt+=("$(tessera2 heavy.txt 2>&1 | sed -n 's/.*done after \([0-9.]*\) s.*/\1/p')")
    bp+=("$(secs sh -c 'parallel --will-cite -j 2 < heavy.txt')")
    bx+=("$(secs sh -c "tr '\\n' '\\0' < heavy.txt | xargs -0 -P 2 -n 1 sh -c")")
  done
  read -r mt lt ht <<< "$(stats "${bt[@]}")"; read -r mp lp hp <<< "$(stats "${bp[@]}")"; read -r mx lx hx <<< "$(stats "${bx[@]}")"
  mpirun --oversubscribe --bind-to none -n 2 "$BUILD/tests/bench/bench_tasks" --balance --reps "$ROUNDS"
  awk -v i="$ideal" -v mt="$mt" -v lt="$lt" -v ht="$ht" -v mp="$mp" -v mx="$mx" -v lp="$lp" -v hp="$hp" -v lx="$lx" -v hx="$hx" 'BEGIN {
    printf "balance: 2000 Pareto sleeps, ideal makespan %.2f s: tessera %.2f s = %.3fx ideal (%.3f-%.3f) | parallel -j 2 %.3fx (%.3f-%.3f) | xargs -P 2 %.3fx (%.3f-%.3f)\n",
      i, mt, mt/i, lt/i, ht/i, mp/i, lp/i, hp/i, mx/i, lx/i, hx/i }'
fi

if want crash; then
  TASKS_CRASH_KILLS=20 TASKS_CRASH_TASKS=600 TSR_BIN=$T TSR_SRC=$SRC TSR_MPIEXEC=mpirun \
    bash "$SRC/tests/robust/test_tasks_crash.sh" | grep -E '^(ok|FAIL|measured)'
fi

if want inproc; then
  "$BUILD/tests/bench/bench_tasks" --reps 5
  for ro in "" --remote-only; do
    mpirun --oversubscribe --bind-to none -n 2 "$BUILD/tests/bench/bench_tasks" --ranks --reps 5 $ro
  done
fi
