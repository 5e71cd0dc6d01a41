#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Real allreduce on this machine, today's build against an older one, in the
# same run (issue 19: the new inter-node algorithms must not slow 2- and
# 3-rank runs). BASE_BUILD is a build directory of the older commit, e.g.
#   git worktree add /tmp/base 288669c   # main before the p2p algorithms
#   cmake -S /tmp/base -B /tmp/base/build -DCMAKE_BUILD_TYPE=RelWithDebInfo
#   cmake --build /tmp/base/build --target bench_allreduce
# Before the SimGrid work bench_allreduce printed a table with fixed methods
# ("mpi 1 bkt", "mpi 25 MiB", "shm 25 MiB", "shm barrier", "MPI_Allreduce");
# newer builds print --tsv lines for the same methods by their new names
# (mpi:auto:0, mpi:auto:25M, shm:auto:25M, shmbar:auto:25M, allreduce),
# both parsed here; the new bench runs one method at a time, as the old one
# timed them (methods interleaved leave each other's buffers cold in cache,
# which at 256 KiB-4 MiB doubles a time). ROUNDS rounds alternate the two builds on 2 and 3 ranks
# (3 oversubscribe the 2 cores); per rank count, size and method the median
# and range over rounds of new/base time are printed (below 1: faster now).
#
# Usage: tests/bench/run_comm_regress.sh BASE_BUILD [BUILD] [--rounds N] [--ranks 2,3]
#          [--min-bytes 256K] [--max-bytes 64M] [--out DIR]
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
base="" build=$root/build rounds=3 ranks=2,3 minb=256K maxb=64M out=""
while [ $# -gt 0 ]; do
  case $1 in
    --rounds) rounds=$2; shift 2 ;;
    --ranks) ranks=$2; shift 2 ;;
    --min-bytes) minb=$2; shift 2 ;;
    --max-bytes) maxb=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    -*) echo "run_comm_regress.sh: unknown option $1" >&2; exit 2 ;;
    *)
      [ -d "$1" ] || { echo "run_comm_regress.sh: build directory $1 not found" >&2; exit 1; }
      if [ -z "$base" ]; then base=$(cd "$1" && pwd); else build=$(cd "$1" && pwd); fi
      shift ;;
  esac
done
[ -n "$base" ] || { echo "usage: run_comm_regress.sh BASE_BUILD [BUILD] [--rounds N]" >&2; exit 2; }
old=$base/tests/bench/bench_allreduce new=$build/tests/bench/bench_allreduce
for b in "$old" "$new"; do
  [ -x "$b" ] || { echo "run_comm_regress.sh: $b missing (build the bench_allreduce target)" >&2; exit 1; }
done
out=${out:-$build/comm-regress}
mkdir -p "$out"
. "$root/scripts/env.sh"
: > "$out/times.tsv"
# mpirun as root and beyond the cores, only where needed
mpiflags=(--oversubscribe)
[ "$(id -u)" = 0 ] && mpiflags+=(--allow-run-as-root)
for ((r = 1; r <= rounds; r++)); do
  for p in ${ranks//,/ }; do
    # base: the table, columns of "time(us) busbw" between the bars
    mpirun "${mpiflags[@]}" -n "$p" "$old" --min-bytes "$minb" --max-bytes "$maxb" > "$out/old-$p-$r.txt"
    awk -F'|' -v p="$p" -v r="$r" '
      $1 ~ /^ *[0-9]/ {
        split($1, a, " "); n = split("mpi:auto:0 mpi:auto:25M shm:auto:25M shmbar:auto:25M allreduce", m, " ")
        for (i = 1; i <= n; i++) { split($(i + 1), c, " "); printf "%s\t%s\t%s\t%s\told\t%.9g\n", r, p, a[1], m[i], c[1] / 1e6 }
      }' "$out/old-$p-$r.txt" >> "$out/times.tsv"
    # one method a run: the old bench timed each method's iterations back to
    # back (its buffer warm in cache), the new one interleaves methods
    : > "$out/new-$p-$r.txt"
    for m in mpi:auto:0 mpi:auto:25M shm:auto:25M shmbar:auto:25M allreduce; do
      mpirun "${mpiflags[@]}" -n "$p" "$new" --min-bytes "$minb" --max-bytes "$maxb" --tsv --methods "$m" \
        >> "$out/new-$p-$r.txt"
    done
    awk -F'\t' -v r="$r" '!/^#/ && NF > 5 {printf "%s\t%s\t%s\t%s\tnew\t%s\n", r, $3, $1, $2, $5}' \
      "$out/new-$p-$r.txt" >> "$out/times.tsv"
  done
  echo "# round $r of $rounds done" >&2
done
# new/base per round, then median and range per (ranks, size, method)
/usr/bin/python3 - "$out/times.tsv" <<'EOF'
import statistics, sys
t = {}
for line in open(sys.argv[1]):
    r, p, size, m, which, sec = line.split("\t")
    t.setdefault((int(p), int(size), m), {}).setdefault(r, {})[which] = float(sec)
print("# new/base time (below 1: faster now): median [min-max] over rounds; base and new medians in us")
print(f"{'ranks':>5} {'size':>10} {'method':<16} {'base us':>10} {'new us':>10} {'new/base':>9} range")
for (p, size, m), rounds in sorted(t.items()):
    pairs = [(v["old"], v["new"]) for v in rounds.values() if "old" in v and "new" in v]
    if not pairs:
        continue
    q = sorted(n / o for o, n in pairs)
    print(f"{p:>5} {size:>10} {m:<16} {statistics.median(o for o, _ in pairs) * 1e6:>10.1f} "
          f"{statistics.median(n for _, n in pairs) * 1e6:>10.1f} {statistics.median(q):>9.3f} [{q[0]:.3f}-{q[-1]:.3f}]")
EOF
