#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# tessera apply against its peers, each pair measured in the same run,
# alternating, ROUNDS times (default 3); prints every round's ratio and
# their spread. Never run by ctest. Usage:
#   tests/bench/run_apply_bench.sh [BUILD_DIR] [dd] [torch] [dask]
# (no part named: all three). Environment: DIR (scratch, default
# /tmp/tessera-apply-bench; files are kept between runs), GIB (size of the
# stats file, default 2), ROUNDS, RANKS (default 2).
#  dd:    `apply stats` over a GIB GiB float32 file [N, 16] with the page
#         cache dropped before each side (echo 3 > /proc/sys/vm/drop_caches,
#         as root) against `dd bs=4M` of the same file: bytes/s ratio
#         (target >= 0.8).
#  torch: `apply predict` of a 784-256-256-10 MLP over 100,000 rows against
#         PyTorch inference (batch 10,000, the same total threads: RANKS
#         ranks of one BLAS thread against torch.set_num_threads(RANKS))
#         reading the same HDF5 with h5py: samples/s ratio (target >= 1.0).
#  dask:  `apply stats` against Dask (python3-dask: apt-get install
#         python3-dask): map_partitions computing count, sum, sum of
#         squares, min and max per partition and Dask's approximate
#         quantiles (the same 7) in one compute, over the same rows as a
#         .npy array (its chunks as dataframe partitions), RANKS threads,
#         warm cache both: seconds ratio (target >= 5). (tessera's side
#         also makes the histograms.)
# tessera's side is the time its rank 0 reports (input opened to result
# written; MPI start-up excluded); the peers' the same span in Python.
set -u
BUILD=${1:-build}
shift || true
PARTS=${*:-dd torch dask}
for p in $BUILD $PARTS; do
  case $p in
    -*) echo "run_apply_bench.sh: unknown option $p (usage: [BUILD_DIR] [dd] [torch] [dask])" >&2; exit 2 ;;
  esac
done
for p in $PARTS; do
  case $p in
    dd | torch | dask) ;;
    *) echo "run_apply_bench.sh: unknown part '$p': expected dd, torch or dask" >&2; exit 2 ;;
  esac
done
[ -x "$BUILD/tessera" ] || { echo "run_apply_bench.sh: $BUILD/tessera not found; build first" >&2; exit 1; }
B=$(realpath "$BUILD")/tessera
SRC=$(cd "$(dirname "$0")/../.." && pwd)
PY=${PYTHON:-/usr/bin/python3}
DIR=${DIR:-/tmp/tessera-apply-bench}
GIB=${GIB:-2}
ROUNDS=${ROUNDS:-3}
RANKS=${RANKS:-2}
. "$SRC/scripts/env.sh"
mkdir -p "$DIR" && cd "$DIR" || exit 1
MPI=(mpirun --oversubscribe --bind-to none -n "$RANKS" -x OPENBLAS_NUM_THREADS=1 -x OMP_NUM_THREADS=1)

# tessera's seconds from its "tessera: apply ...: ..., T s, ..." line.
tsec() { sed -n 's/.* \([0-9.]*\) s, [0-9.]* MB\/s$/\1/p' "$1" | tail -1; }
drop() { sync && echo 3 >/proc/sys/vm/drop_caches 2>/dev/null; }
spread() { # spread NAME VALUES...: min, median, max
  $PY - "$@" <<'PY'
import statistics, sys
v = sorted(float(x) for x in sys.argv[2:])
print(f"{sys.argv[1]}: median {statistics.median(v):.3f}, min {v[0]:.3f}, max {v[-1]:.3f} over {len(v)} rounds")
PY
}

if [[ " $PARTS " == *" dd "* ]]; then
  [ -s stats.h5 ] || $PY - "$GIB" <<'PY'
import h5py, numpy as np, sys
n = int(float(sys.argv[1]) * (1 << 30)) // 64; rng = np.random.default_rng(0)
with h5py.File("stats.h5", "w") as f:
    ds = f.create_dataset("X", (n, 16), np.float32)
    for i in range(0, n, 1 << 20):
        ds[i:i + (1 << 20)] = rng.standard_normal((min(1 << 20, n - i), 16), dtype=np.float32)
PY
  drop || echo "note: cannot drop the page cache (not root?): both sides may read from memory"
  SIZE=$(stat -c %s stats.h5)
  # One dd before the rounds, not counted: the first cold read after the
  # file was written (or after other work) ran at a third of the later
  # ones, in dd's own CPU time too (the kernel reclaiming), and would
  # flatter the first ratio.
  drop; dd if=stats.h5 of=/dev/null bs=4M status=none
  R=()
  for r in $(seq "$ROUNDS"); do
    drop
    t0=$(date +%s.%N); /usr/bin/time -f '%U %S' -o ddcpu.txt dd if=stats.h5 of=/dev/null bs=4M status=none; t1=$(date +%s.%N)
    dd_mb=$($PY -c "print($SIZE / 1e6 / ($t1 - $t0))")
    drop
    /usr/bin/time -f '%U %S' -o apcpu.txt "${MPI[@]}" "$B" apply stats --input stats.h5 --quiet >a.txt 2>&1 \
      || { cat a.txt; exit 1; }
    ap_mb=$($PY -c "print($SIZE / 1e6 / $(tsec a.txt))")
    ratio=$($PY -c "print(f'{$ap_mb / $dd_mb:.3f}')")
    # CPU seconds (user + system, every rank and the launcher): on a loaded
    # machine wall time is mostly waiting for a core; this is what it needs.
    cpu=$(awk '{print $1 + $2}' apcpu.txt) ddcpu=$(awk '{print $1 + $2}' ddcpu.txt)
    printf 'dd round %d: dd %.0f MB/s (%.2f CPU s), apply stats %.0f MB/s on %d ranks (%.2f CPU s: %.0f MB per CPU s), ratio %s\n' \
      "$r" "$dd_mb" "$ddcpu" "$ap_mb" "$RANKS" "$cpu" "$($PY -c "print($SIZE / 1e6 / $cpu)")" "$ratio"
    R+=("$ratio")
  done
  spread "apply stats / dd (target >= 0.8)" "${R[@]}"
fi

if [[ " $PARTS " == *" torch "* ]]; then
  if [ ! -s mlp.h5 ]; then
    $PY - <<'PY'
import h5py, numpy as np
rng = np.random.default_rng(1)
with h5py.File("rows784.h5", "w") as f:
    f["X"] = rng.random((100000, 784), dtype=np.float32)
with h5py.File("train784.h5", "w") as f:
    f["X"] = rng.random((2000, 784), dtype=np.float32); f["y"] = rng.integers(0, 10, 2000).astype(np.int32)
PY
    printf '[data]\npath = train784.h5\n[model]\nhidden = 256,256\n[train]\nepochs = 1\nbatch_size = 100\noutput = mlp.h5\nregister = false\n[runtime]\nprogress = none\n[checkpoint]\nfinal = false\n' >mlp.ini
    "$B" train mlp.ini >train.txt 2>&1 || { cat train.txt; exit 1; }
  fi
  R=()
  for r in $(seq "$ROUNDS"); do
    rm -f pred.h5
    "${MPI[@]}" "$B" apply predict mlp.h5 --input rows784.h5 --output pred.h5 --partition-rows 10000 >p.txt 2>&1 \
      || { cat p.txt; exit 1; }
    ts=$($PY -c "print(100000 / $(tsec p.txt))")
    py=$(OPENBLAS_NUM_THREADS=$RANKS OMP_NUM_THREADS=$RANKS $PY - "$RANKS" <<'PY'
import h5py, numpy as np, sys, time, torch
torch.set_num_threads(int(sys.argv[1]))
m = h5py.File("mlp.h5")["model"]
net = torch.nn.Sequential(torch.nn.Linear(784, 256), torch.nn.ReLU(), torch.nn.Linear(256, 256), torch.nn.ReLU(),
                          torch.nn.Linear(256, 10), torch.nn.Softmax(dim=1))
dense = sorted((k for k in m if "weight" in m[k]), key=lambda k: int(k.split("_")[1]))
with torch.no_grad():
    for k, name in zip((0, 2, 4), dense):
        net[k].weight.copy_(torch.from_numpy(m[name]["weight"][()]))
        net[k].bias.copy_(torch.from_numpy(m[name]["bias"][()]))
t0 = time.time()
f = h5py.File("rows784.h5"); X = f["X"]; out = []
with torch.inference_mode():
    for i in range(0, X.shape[0], 10000):
        out.append(net(torch.from_numpy(X[i:i + 10000])).numpy())
print(X.shape[0] / (time.time() - t0))
PY
)
    ratio=$($PY -c "print(f'{$ts / $py:.3f}')")
    printf 'torch round %d: apply predict %.0f rows/s on %d ranks, PyTorch %.0f rows/s with %d threads, ratio %s\n' \
      "$r" "$ts" "$RANKS" "$py" "$RANKS" "$ratio"
    R+=("$ratio")
  done
  spread "apply predict / PyTorch (target >= 1.0)" "${R[@]}"
fi

if [[ " $PARTS " == *" dask "* ]]; then
  $PY -c "import dask.dataframe" 2>/dev/null || { echo "dask: python3-dask is not installed (apt-get install python3-dask)"; exit 0; }
  [ -s dask.h5 ] || $PY - <<'PY'
import h5py, numpy as np
rng = np.random.default_rng(2)
X = rng.standard_normal((8 << 20, 16), dtype=np.float32)
with h5py.File("dask.h5", "w") as f:
    f["X"] = X
np.save("dask.npy", X)
PY
  R=()
  for r in $(seq "$ROUNDS"); do
    "${MPI[@]}" "$B" apply stats --input dask.h5 --quiet >d.txt 2>&1 || { cat d.txt; exit 1; }
    ts=$(tsec d.txt)
    dk=$($PY - "$RANKS" <<'PY'
import sys, time, numpy as np, pandas as pd, dask, dask.array as da, dask.dataframe as dd
t0 = time.time()
X = np.load("dask.npy", mmap_mode="r")
df = dd.from_dask_array(da.from_array(X, chunks=(65536, X.shape[1])))
def part(p):
    return pd.DataFrame({"n": p.count(), "sum": p.sum(), "sq": (p * p).sum(), "min": p.min(), "max": p.max()}).T
moments = df.map_partitions(part)
quant = df.quantile([0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99])
res = dask.compute(moments, quant, scheduler="threads", num_workers=int(sys.argv[1]))
print(time.time() - t0)
PY
)
    ratio=$($PY -c "print(f'{$dk / $ts:.3f}')")
    printf 'dask round %d: apply stats %.2f s on %d ranks, Dask map_partitions %.2f s with %d threads, ratio %s\n' \
      "$r" "$ts" "$RANKS" "$dk" "$RANKS" "$ratio"
    R+=("$ratio")
  done
  spread "Dask time / apply stats time (target >= 5)" "${R[@]}"
fi
