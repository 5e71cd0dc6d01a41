#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The cost of train.reproducible = world against the default mode, measured
# with `tessera train` as users run it: the Fashion-MNIST 784-256-256-10 MLP
# (tests/bench/fashion.ini) on NP ranks (default 2), global batch G (512)
# in micro-batches of B (64), E epochs (3). Default mode: the auto back-end
# (shm on one node) and algorithm, BLAS threads = cores per rank; world
# mode: mpi + rabenseifner, the micro-batches summed as a tree, one BLAS
# thread per rank. Runs alternate, R (5) of each; prints the median
# samples/s of each mode, their ratio and the spread, and whether the world
# runs' parameters were byte-identical to each other and to the same
# world-mode run on 1 and on 4 ranks.
#
# Usage: tests/bench/run_repro_bench.sh [BUILD_DIR] [--np N] [--repeats R] [--set KEY=VALUE ...]
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$here/fashion_h5.sh"
root=$(cd "$here/../.." && pwd)
build=build np=2 reps=5 sets=()
while [ $# -gt 0 ]; do
  case $1 in
    --np) np=$2; shift 2 ;;
    --repeats) reps=$2; shift 2 ;;
    --set) sets+=(--set "$2"); shift 2 ;;
    -h|--help) sed -n '2,13p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "run_repro_bench.sh: unknown option $1" >&2; exit 2 ;;
    *) build=$1; shift ;;
  esac
done
case $build in /*) ;; *) build=$root/$build ;; esac
tessera=$build/tessera
[ -x "$tessera" ] || { echo "run_repro_bench.sh: $tessera not found; build first" >&2; exit 1; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fashion_h5 "$tessera" "$work/fashion.h5" || exit 1
cp "$here/fashion.ini" "$work/"
cd "$work"
common=(--set train.epochs=3 --set train.batch_size=64 --set train.global_batch=512 --set train.register=false
        --set runtime.progress=none --set checkpoint.final=false --set train.eval=false "${sets[@]}")
rate() { sed -n 's/.* | \([0-9.]*\) samples\/s .*/\1/p' "$1"; }
for i in $(seq "$reps"); do
  mpirun --oversubscribe -n "$np" "$tessera" train fashion.ini "${common[@]}" --set train.output=r$i.h5 >r$i.txt 2>&1
  mpirun --oversubscribe -n "$np" "$tessera" train fashion.ini "${common[@]}" --set train.reproducible=world \
    --set train.output=w$i.h5 >w$i.txt 2>&1
  echo "run $i: default $(rate r$i.txt) samples/s, world $(rate w$i.txt) samples/s"
done
# the same world-mode run on 1 and 4 ranks (4 oversubscribed where needed)
for n in 1 4; do
  mpirun --oversubscribe -n "$n" "$tessera" train fashion.ini "${common[@]}" --set train.reproducible=world \
    --set train.output=n$n.h5 >n$n.txt 2>&1 || { echo "world mode on $n ranks failed"; cat n$n.txt; }
done
/usr/bin/python3 - "$reps" <<'PY'
import re, sys, statistics as st, hashlib, h5py
n = int(sys.argv[1])
def rate(f): return float(re.search(r"\| ([0-9.]+) samples/s", open(f).read()).group(1))
d = [rate(f"r{i}.txt") for i in range(1, n + 1)]
w = [rate(f"w{i}.txt") for i in range(1, n + 1)]
def digest(p):
    h = hashlib.sha256()
    h5py.File(p, "r")["model"].visititems(lambda k, o: h.update(o[()].tobytes()) if isinstance(o, h5py.Dataset) else None)
    return h.hexdigest()
same = len({digest(f"w{i}.h5") for i in range(1, n + 1)}) == 1
ranks = {k: digest(f"n{k}.h5") == digest("w1.h5") for k in (1, 4)}
pairs = [b / a for a, b in zip(d, w)]
print(f"default: median {st.median(d):.0f} samples/s (min {min(d):.0f}, max {max(d):.0f})")
print(f"world:   median {st.median(w):.0f} samples/s (min {min(w):.0f}, max {max(w):.0f})")
print(f"world / default: {st.median(w) / st.median(d):.3f} (paired runs {min(pairs):.3f}-{max(pairs):.3f}); "
      f"world runs byte-identical to each other: {same}")
print(f"world mode on 1 and 4 ranks byte-identical to the 2-rank runs: {ranks[1]} and {ranks[4]}")
PY
