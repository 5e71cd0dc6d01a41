#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Checkpoint benchmarks:
#   (a, b) bench_ckpt in DIR: write bandwidth against dd conv=fsync to the same
#          directory (target ratio >= 0.80), and the step-time overhead of
#          asynchronous checkpoints on MLP training (target <= 2%);
#   (c)    restart: the time from starting `tessera train --resume auto` to
#          its first resumed step, with the real program on NP MPI ranks, for
#          the bundled digits example and for Fashion-MNIST (target < 2 s).
# For (c) a first run trains with checkpoints until step S; each timed run then
# resumes from the newest checkpoint with train.max_steps = S + 1, i.e. exactly
# one step, writes no further checkpoints, and prints a progress line after the
# step (runtime.progress = lines, train.log_every = 1). Every output line is
# stamped as it arrives, so the figure is the time from starting mpirun to
# rank 0's line for the first resumed step: MPI launch, set-up, data loading,
# finding, verifying, restoring and broadcasting the checkpoint, one step.
# Nothing is added to the library for this. Alternating with it, the peer: the
# same command starting fresh (no --resume) with max_steps = 1; the difference
# is what the resume costs. The time to mpirun's exit (evaluation and model
# file included) is printed too.
# Medians of REPS runs each.
#
# Usage: tests/bench/run_ckpt_bench.sh [BUILD_DIR] [--dir DIR] [--np N] [--reps N]
#                                      [--only bench|restart] [-- bench_ckpt options...]
#   BUILD_DIR  the build tree (default: build, relative to the repository root)
#   --dir DIR  where checkpoints go (default: a new temporary directory in the
#              build tree; /tmp may be a tmpfs, where fsync costs nothing)
#   --np N     MPI ranks for the restart runs (default 2)
#   --reps N   timed runs of each kind for the restart figures (default 5)
# Everything written goes into a fresh subdirectory of DIR, removed at the end.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$here/fashion_h5.sh"
root=$(cd "$here/../.." && pwd)
build=build
np=2
reps=5
only=
base=
bench_args=()
while [ $# -gt 0 ]; do
  case $1 in
    --dir) base=$2; shift 2 ;;
    --np) np=$2; shift 2 ;;
    --reps) reps=$2; shift 2 ;;
    --only) only=$2; shift 2 ;;
    --) shift; bench_args=("$@"); break ;;
    -h|--help) sed -n '2,26p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "run_ckpt_bench.sh: unknown option $1" >&2; exit 2 ;;
    *) build=$1; shift ;;
  esac
done
case $build in /*) ;; *) build=$root/$build ;; esac
tessera=$build/tessera
bench=$build/tests/bench/bench_ckpt
for x in "$tessera" "$bench"; do
  [ -x "$x" ] || { echo "run_ckpt_bench.sh: $x not found; build first (make tessera_cli bench_ckpt)" >&2; exit 1; }
done
mpirun=$(command -v mpirun || command -v mpiexec) || { echo "run_ckpt_bench.sh: no mpirun" >&2; exit 1; }
mpiflags=(--oversubscribe --bind-to none)
[ "$(id -u)" -eq 0 ] && mpiflags+=(--allow-run-as-root)
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1

[ -n "$base" ] || base=$build
mkdir -p "$base"
work=$(mktemp -d "$base/tsr-ckpt-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
fstype=$(df --output=fstype "$work" | tail -1 | tr -d ' ')
echo "== checkpoints go to $work ($fstype)" >&2
if [ "$fstype" = tmpfs ] || [ "$fstype" = ramfs ]; then
  echo "run_ckpt_bench.sh: warning: $work is on $fstype: fsync is free there, so bandwidth and restart" \
       "figures say nothing about a disk; pass --dir on a disk-backed file system" >&2
fi

now() { date +%s.%N; }
median() { sort -g | awk '{v[NR]=$1} END {if (NR == 0) {print "nan"; exit} if (NR % 2) print v[(NR+1)/2]; else printf "%.6f\n", (v[NR/2]+v[NR/2+1])/2}'; }
status=0

# ---- (a, b) ----
if [ -z "$only" ] || [ "$only" = bench ]; then
  echo "== $bench --dir $work ${bench_args[*]:-}" >&2
  "$bench" --dir "$work" "${bench_args[@]}" || status=1
  echo
fi

# ---- (c) restart to the first resumed step ----
restart_rows=()  # "name|S|bytes|resumed|first|whole|fresh_first|fresh_whole"

# Each output line prefixed with the time it arrived ($EPOCHREALTIME; tessera
# flushes every log line, so the stamp is when rank 0 printed it, give or take
# mpirun's forwarding).
stamp() { local line; while IFS= read -r line; do printf '%s %s\n' "$EPOCHREALTIME" "$line"; done; }
# since T0 LOG PATTERN: seconds from T0 to the first line of LOG matching PATTERN
since() { awk -v t0="$1" -v pat="$3" '$0 ~ pat {printf "%.3f\n", $1 - t0; exit}' "$2"; }

# timed LOG ARGS...: runs tessera train ARGS on NP ranks with a progress line
# after every step; prints the whole run's seconds.
timed() {
  local log=$1 t0 t1
  shift
  t0=$EPOCHREALTIME
  "$mpirun" "${mpiflags[@]}" -n "$np" "$tessera" train "$@" --set runtime.progress=lines --set train.log_every=1 \
    2>&1 | stamp >"$log"
  local rc=${PIPESTATUS[0]}
  t1=$EPOCHREALTIME
  echo "$t0 $t1"
  return "$rc"
}

# restart NAME CONFIG TRAIN_STEPS EVERY [--set ...]: train to TRAIN_STEPS with a
# checkpoint every EVERY steps, then REPS x (resume for one step, fresh one step).
restart() {
  local name=$1 conf=$2 steps=$3 every=$4
  shift 4
  local d=$work/$name ck=$work/$name/ck
  mkdir -p "$d"
  local common=(--set "checkpoint.dir=$ck" --set train.register=false "$@")
  echo "== $name: training $steps steps with a checkpoint every $every" >&2
  if ! "$mpirun" "${mpiflags[@]}" -n "$np" "$tessera" train "$conf" "${common[@]}" --set runtime.progress=none \
      --set "train.max_steps=$steps" --set "checkpoint.every_steps=$every" --set checkpoint.async=true \
      --set "train.output=$d/first.h5" >"$d/first.log" 2>&1; then
    tail -20 "$d/first.log" >&2
    echo "run_ckpt_bench.sh: $name: the first training run failed" >&2
    restart_rows+=("$name|failed")
    status=1
    return
  fi
  local s
  s=$(ls "$ck" | sed -n 's/^ckpt-0*\([0-9][0-9]*\)\.h5$/\1/p' | sort -n | tail -1)
  [ -n "$s" ] || { echo "run_ckpt_bench.sh: $name: no checkpoint written" >&2; restart_rows+=("$name|none"); status=1; return; }
  local size
  size=$(stat -c %s "$ck/ckpt-$(printf %010d "$s").h5")
  echo "== $name: newest checkpoint: step $s ($size bytes); $reps x (resume + 1 step, fresh 1 step)" >&2
  # No checkpoints are written in the timed runs: only the restore is measured.
  local quiet=(--set checkpoint.every_steps=0 --set checkpoint.every_seconds=0 --set checkpoint.final=false)
  local rs=() rf=() rw=() ff=() fw=() t i
  for i in $(seq "$reps"); do
    if ! t=$(timed "$d/resume.log" "$conf" "${common[@]}" "${quiet[@]}" --resume auto \
        --set "train.max_steps=$((s + 1))" --set "train.output=$d/resumed.h5"); then
      tail -20 "$d/resume.log" >&2; status=1; restart_rows+=("$name|$s|resume failed"); return
    fi
    grep -q "resumed from .*ckpt-0*$s.h5" "$d/resume.log" || {
      cat "$d/resume.log" >&2; echo "run_ckpt_bench.sh: $name: did not resume from step $s" >&2
      status=1; restart_rows+=("$name|$s|no resume"); return; }
    read -r t0 t1 <<<"$t"
    rs+=("$(since "$t0" "$d/resume.log" 'resumed from')")
    rf+=("$(since "$t0" "$d/resume.log" " step [0-9]+/[0-9]+ loss")")
    rw+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.3f", b-a}')")
    if ! t=$(timed "$d/fresh.log" "$conf" "${common[@]}" "${quiet[@]}" --set checkpoint.resume=none \
        --set train.max_steps=1 --set "train.output=$d/fresh.h5"); then
      tail -20 "$d/fresh.log" >&2; status=1; restart_rows+=("$name|$s|fresh failed"); return
    fi
    read -r t0 t1 <<<"$t"
    ff+=("$(since "$t0" "$d/fresh.log" " step [0-9]+/[0-9]+ loss")")
    fw+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.3f", b-a}')")
    echo "   run $i: resume: restored at ${rs[-1]} s, first step at ${rf[-1]} s, exit at ${rw[-1]} s;" \
         "fresh: first step at ${ff[-1]} s, exit at ${fw[-1]} s" >&2
  done
  med() { printf '%s\n' "$@" | median; }
  restart_rows+=("$name|$s|$size|$(med "${rs[@]}")|$(med "${rf[@]}")|$(med "${rw[@]}")|$(med "${ff[@]}")|$(med "${fw[@]}")")
}

if [ -z "$only" ] || [ "$only" = restart ]; then
  restart digits "$root/examples/digits.ini" 300 100

  if ! fashion_h5 "$tessera" "$work/fashion.h5"; then
    restart_rows+=("fashion-mnist|no data|-|-|-|-|-")
    status=1
  else
    restart fashion-mnist "$here/fashion.ini" 200 100 --set "data.path=$work/fashion.h5"
  fi

  echo "(c) restart to the first resumed step, $np ranks, median of $reps runs each (target < 2 s)"
  printf '    %-14s %7s %10s | %9s %11s %9s | %11s %9s | %9s\n' run "ckpt at" "ckpt" "resume:" "resume:" "resume:" \
    "fresh:" "fresh:" "resume -"
  printf '    %-14s %7s %10s | %9s %11s %9s | %11s %9s | %9s\n' "" step bytes restored "first step" exit \
    "first step" exit "fresh"
  for r in "${restart_rows[@]}"; do
    IFS='|' read -r name s size rs rf rw ff fw <<<"$r"
    printf '    %-14s %7s %10s | %9s %11s %9s | %11s %9s | %9s\n' "$name" "$s" "${size:--}" "${rs:--}" "${rf:--}" \
      "${rw:--}" "${ff:--}" "${fw:--}" "$(awk -v a="$rf" -v b="$ff" 'BEGIN{if (a != "" && b != "") printf "%+.3f", a-b; else print "-"}')"
    awk -v t="$rf" 'BEGIN{exit !(t+0 > 0 && t+0 < 2)}' || status=1
  done
  echo "    seconds from starting mpirun (so MPI launch, set-up and data loading are included) to the line"
  echo "    'resumed from ...' (restored), to rank 0's progress line of the first resumed step (first step),"
  echo "    and to mpirun's exit (after evaluation and the model file). fresh: the same command starting"
  echo "    from scratch for one step. The target applies to 'resume: first step'."
fi
exit $status
