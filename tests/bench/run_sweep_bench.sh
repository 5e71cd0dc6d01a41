#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Sweep benchmarks on the bundled digits data, 2 ranks, each figure against
# a peer measured in the same round, rounds alternating, medians with the
# spread (min-max) over --rounds:
#   packing  16 trials (lr x batch size grid) as one `tessera sweep` with
#            --ranks-per-trial 1 against the same 16 trainings run one after
#            another with `mpirun -n 2 tessera train` (target <= 0.55x)
#   asha     the same sweep with --asha (rungs at epochs/9 and epochs/3,
#            keep 1/3) against the full sweep: its time as a fraction of the
#            full sweep's (target <= 0.40) and its best finished accuracy
#            against the best of the full grid (target: within 1 point);
#            and the time until ASHA first finished a trial within 1 point
#            of the grid's best (finished_at in trials.json) over the full
#            sweep's own time (elapsed_seconds), both from the start of the
#            sweep after MPI start-up
#
#   tests/bench/run_sweep_bench.sh [BUILD_DIR] [--rounds 3] [--epochs 40] [--set section.key=value ...]
set -u
BUILD=build
ROUNDS=3
EPOCHS=40
EXTRA=()
while [ $# -gt 0 ]; do
  case $1 in
    --rounds) ROUNDS=$2; shift ;;
    --epochs) EPOCHS=$2; shift ;;
    --set) EXTRA+=(--set "$2"); shift ;;
    -*) echo "run_sweep_bench.sh: unknown option $1" >&2; exit 2 ;;
    *) BUILD=$1 ;;
  esac
  shift
done
SRC=$(cd "$(dirname "$0")/../.." && pwd)
[ -x "$BUILD/tessera" ] || { echo "run_sweep_bench.sh: $BUILD/tessera not found; build first" >&2; exit 1; }
BUILD=$(cd "$BUILD" && pwd)
T=$BUILD/tessera
PY=/usr/bin/python3
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
W=$(mktemp -d "${TMPDIR:-/tmp}/tessera-sweep-bench.XXXXXX")
trap 'rm -rf "$W"' EXIT
cd "$W" || exit 1
cp "$SRC/examples/digits.ini" . && mkdir -p data && cp "$SRC/examples/data/digits.h5" data/
LRS=(0.003 0.01 0.03 0.1)
BATCHES=(8 16 32 64)
COMMON=(--set train.epochs="$EPOCHS" --set runtime.progress=none --set train.register=false "${EXTRA[@]}")
mpi2() { mpirun --oversubscribe --bind-to none -n 2 "$T" "$@"; }
secs() { local t0=$EPOCHREALTIME; "$@" >/dev/null 2>&1 || echo "FAILED: $*" >&2; awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.3f", b - a }'; }
stats() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { printf "%s (%s-%s)", v[int((NR + 1) / 2)], v[1], v[NR] }'; }
sequential() {
  rm -rf seq && mkdir seq
  for lr in "${LRS[@]}"; do
    for b in "${BATCHES[@]}"; do
      mpi2 train digits.ini "${COMMON[@]}" --set optim.lr="$lr" --set train.batch_size="$b" \
        --set train.output="seq/$lr-$b.h5" --set checkpoint.dir="seq/ck-$lr-$b" || return 1
    done
  done
}
sweep() { # DIR [ARGS...]
  local d=$1; shift
  rm -rf "$d" registry
  mpi2 sweep digits.ini --grid optim.lr="$(IFS=,; echo "${LRS[*]}")" --grid train.batch_size="$(IFS=,; echo "${BATCHES[*]}")" \
    "${COMMON[@]}" --ranks-per-trial 1 -o "$d" "$@"
}
# reach FULL ASHA: ASHA's first finish within 1 point of the full grid's best, over the full sweep's time
reach() {
  $PY - "$1" "$2" <<'PY'
import json, sys
full, asha = (json.load(open(p)) for p in sys.argv[1:])
best = max(t["test_accuracy"] for t in full["trials"] if t["status"] == "done")
hit = [t["finished_at"] for t in asha["trials"] if t["status"] == "done" and t["test_accuracy"] >= best - 0.01]
print("%.3f" % (min(hit) / full["elapsed_seconds"]) if hit else "nan")
PY
}
best() { $PY -c 'import csv,sys; print(max(float(r["test_accuracy"]) for r in csv.DictReader(open(sys.argv[1])) if r["status"] == "done"))' "$1"; }
r1=$((EPOCHS / 9 > 0 ? EPOCHS / 9 : 1)); r2=$((EPOCHS / 3 > r1 ? EPOCHS / 3 : r1 + 1))
echo "tessera sweep benchmarks: 16 digits trials of $EPOCHS epochs on 2 ranks, $(nproc) cores, $(uptime | sed 's/.*load/load/')"
P=() A=() GAP=() H=()
for r in $(seq "$ROUNDS"); do
  # Alternate the order so that load drifts hit both sides.
  if [ $((r % 2)) -eq 1 ]; then ts=$(secs sequential); tw=$(secs sweep full); else tw=$(secs sweep full); ts=$(secs sequential); fi
  ta=$(secs sweep asha --asha "$r1,$r2:0.34")
  bf=$(best full/trials.csv) ba=$(best asha/trials.csv)
  p=$(awk -v a="$tw" -v b="$ts" 'BEGIN { printf "%.3f", a / b }')
  a=$(awk -v a="$ta" -v b="$tw" 'BEGIN { printf "%.3f", a / b }')
  g=$(awk -v a="$ba" -v b="$bf" 'BEGIN { printf "%.2f", 100 * (b - a) }')
  h=$(reach full/trials.json asha/trials.json)
  echo "round $r: sequential ${ts} s, sweep ${tw} s (${p}x); ASHA ${ta} s (${a}x of the sweep), best accuracy" \
       "full $(awk -v v="$bf" 'BEGIN { printf "%.2f", 100 * v }')% ASHA $(awk -v v="$ba" 'BEGIN { printf "%.2f", 100 * v }')% (gap $g points);" \
       "ASHA: $(grep -c ',done,' asha/trials.csv) done, $(grep -c ',pruned,' asha/trials.csv) pruned;" \
       "within 1 point after ${h}x of the full sweep's time"
  P+=("$p") A+=("$a") GAP+=("$g") H+=("$h")
done
echo "packing: sweep / sequential = $(stats "${P[@]}") (target <= 0.55)"
echo "asha: time / full sweep = $(stats "${A[@]}") (target <= 0.40); accuracy gap to the best grid trial, points = $(stats "${GAP[@]}") (target <= 1)"
echo "asha: first finish within 1 point of the grid's best / full sweep = $(stats "${H[@]}") (target <= 0.40)"
