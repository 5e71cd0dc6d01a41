#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Same seed and world size: byte-identical weights. 1 rank x batch 32 and
# 2 ranks x batch 16 (the same global batch) agree to float tolerance.
. "$(dirname "$0")/lib.sh"
cp "$TSR_SRC/examples/digits.ini" . && mkdir -p data && cp "$TSR_SRC/examples/data/digits.h5" data/
common=(--set train.epochs=3 --set runtime.progress=none --set runtime.bucket_kb=16)
mpi 2 train digits.ini "${common[@]}" --set train.output=a.h5 >/dev/null || bad "run a"
mpi 2 train digits.ini "${common[@]}" --set train.output=b.h5 >/dev/null || bad "run b"
mpi 2 train digits.ini "${common[@]}" --set train.output=c.h5 --set data.prefetch=false >/dev/null || bad "run c"
mpi 1 train digits.ini "${common[@]}" --set train.output=one.h5 --set train.batch_size=32 >/dev/null || bad "run one"
$PY - <<'PY' && ok "identical weights across runs" || bad "weights differ between identical runs"
import h5py, numpy as np
def w(p):
    f = h5py.File(p, "r"); g = f["model"]
    return [g[k][n][()] for k in sorted(g) for n in ("weight", "bias")]
a, b, c = w("a.h5"), w("b.h5"), w("c.h5")
assert all(x.tobytes() == y.tobytes() for x, y in zip(a, b)), "a != b"
assert all(x.tobytes() == y.tobytes() for x, y in zip(a, c)), "prefetch changed the result"
PY
$PY - <<'PY' && ok "1 rank and 2 ranks agree" || bad "1-rank and 2-rank weights differ beyond tolerance"
import h5py, numpy as np
def w(p):
    f = h5py.File(p, "r"); g = f["model"]
    return np.concatenate([g[k][n][()].ravel() for k in sorted(g) for n in ("weight", "bias")])
a, o = w("a.h5"), w("one.h5")
d = np.abs(a - o).max()
print("max |w1 - w2| =", d)
assert d < 1e-3, d
PY
# Every allreduce algorithm is bit-reproducible on its own (3 ranks: the
# orders differ from each other), and a bad name is refused (exit 2).
for alg in ring rabenseifner; do
  for run in 1 2; do
    mpi 3 train digits.ini "${common[@]}" --set train.epochs=1 --set runtime.comm=mpi \
      --set runtime.allreduce_algorithm=$alg --set train.output=$alg-$run.h5 >/dev/null || bad "run $alg $run"
  done
  $PY - "$alg-1.h5" "$alg-2.h5" <<'PY' && ok "$alg: identical weights across runs" || bad "$alg: weights differ between identical runs"
import sys, h5py
def w(p):
    g = h5py.File(p, "r")["model"]
    return b"".join(g[k][n][()].tobytes() for k in sorted(g) for n in ("weight", "bias"))
assert w(sys.argv[1]) == w(sys.argv[2])
PY
done
out=$(mpi 1 train digits.ini "${common[@]}" --set runtime.allreduce_algorithm=butterfly 2>&1); rc=$?
[ $rc = 2 ] && grep -q "allreduce_algorithm" <<< "$out" && ok "unknown algorithm refused" || bad "unknown algorithm: rc $rc: $out"
finish
