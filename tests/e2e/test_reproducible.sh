#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# train.reproducible = world: one global batch summed in one fixed tree, so
# 1, 2 and 4 ranks (and a resume on another rank count) give byte-identical
# model files' tensors (parameters and batch norm's running statistics,
# applied in the global batch's order), with dropout, batch norm and a
# residual block; tree and rabenseifner sum in the same tree.
. "$(dirname "$0")/lib.sh"
cp "$TSR_SRC/examples/digits.ini" "$TSR_SRC/examples/digits_cnn.ini" . && mkdir -p data \
  && cp "$TSR_SRC/examples/data/digits.h5" data/
common=(--set train.epochs=2 --set runtime.progress=none --set train.register=false --set train.batch_size=16
        --set train.global_batch=64)
world=(--set train.reproducible=world)

params() { # params A B: "identical" or the first tensors that differ
  $PY - "$1" "$2" <<'PY'
import sys, h5py
def w(p):
    out = {}
    h5py.File(p, "r")["model"].visititems(
        lambda n, o: out.__setitem__(n, o[()].tobytes()) if isinstance(o, h5py.Dataset) else None)
    return out
a, b = w(sys.argv[1]), w(sys.argv[2])
d = [k for k in sorted(a) if a[k] != b.get(k)]
print("identical" if a and not d and a.keys() == b.keys() else "differ: " + " ".join(d[:3]))
PY
}

for cfg in digits digits_cnn; do
  for np in 1 2 4; do
    mpi $np train $cfg.ini "${common[@]}" "${world[@]}" --set train.output=$cfg-$np.h5 >$cfg-$np.txt 2>&1 \
      || { bad "$cfg on $np ranks"; cat $cfg-$np.txt; }
  done
  for np in 2 4; do
    r=$(params $cfg-1.h5 $cfg-$np.h5 2>&1)
    [ "$r" = identical ] && ok "$cfg: $np ranks byte-identical to 1 rank" || bad "$cfg: $np ranks vs 1: $r"
  done
done

# every back-end and layout that can keep the tree: shm (pairwise over local
# ranks), shm over 2 nodes of 2 (node sums, then rabenseifner between the
# leaders), mpi with rabenseifner, mpi with recursive doubling (tree);
# auto on 3 fake nodes of 4 ranks (uneven) falls back to mpi
check4() { # NAME ARGS...: 4 ranks byte-identical to 1 rank
  local name=$1; shift
  mpi 4 train digits_cnn.ini "${common[@]}" "${world[@]}" --set train.output=c4.h5 "$@" >c4.txt 2>&1 \
    || { bad "$name run"; cat c4.txt; return; }
  local r be
  r=$(params digits_cnn-1.h5 c4.h5 2>&1)
  be=$(sed -n 's/.*, comm \([a-z]*\) .*/\1/p' c4.txt | head -1)
  [ "$r" = identical ] && ok "$name (comm $be): byte-identical to 1 rank" || bad "$name: $r"
}
check4 "shm, 1 node" --set runtime.comm=shm
TSR_COMM_FAKE_NODES=2 check4 "shm, 2 nodes of 2"
TSR_COMM_FAKE_NODES=3 check4 "auto, 3 uneven nodes"
check4 "mpi, rabenseifner" --set runtime.comm=mpi
# recursive doubling (tree) adds up the same tree as recursive halving/doubling
mpi 2 train digits_cnn.ini "${common[@]}" "${world[@]}" --set runtime.allreduce_algorithm=tree --set runtime.comm=mpi \
  --set train.output=tree.h5 >tree.txt 2>&1 || { bad "tree run"; cat tree.txt; }
r=$(params digits_cnn-4.h5 tree.h5 2>&1)
[ "$r" = identical ] && ok "2 ranks with tree = 4 ranks with rabenseifner" || bad "tree vs rabenseifner: $r"

# killed on 2 ranks, resumed on 4: the uninterrupted run's parameters
ck=(--set checkpoint.every_steps=10 --set checkpoint.dir=ck --set train.output=res.h5)
TSR_FAULT_KILL=1:25 mpi 2 train digits_cnn.ini "${common[@]}" "${world[@]}" "${ck[@]}" >k.txt 2>&1
[ $? -ne 0 ] && [ ! -e res.h5 ] || bad "the killed run did not fail"
mpi 4 train digits_cnn.ini "${common[@]}" "${world[@]}" "${ck[@]}" --resume auto >r.txt 2>&1
r=$(params digits_cnn-1.h5 res.h5 2>&1)
grep -q 'continues as the uninterrupted run would' r.txt && [ "$r" = identical ] \
  && ok "killed at step 25 on 2 ranks, resumed on 4: byte-identical to the uninterrupted run" \
  || { bad "resume on another rank count: $r"; grep -E 'resum|error' k.txt r.txt; }

# the default mode is reproducible for one rank count only: say so when it is not (not asserted either way)
mpi 2 train digits_cnn.ini "${common[@]}" --set train.output=ranks-2.h5 >/dev/null 2>&1
echo "note: the default mode (reproducible = ranks), 2 ranks vs world mode: $(params digits_cnn-1.h5 ranks-2.h5)"

# refused: one line naming the keys, exit 2, nothing written
refused() { # NAME NP PATTERN ARGS...
  local name=$1 np=$2 pat=$3; shift 3
  mpi "$np" train digits.ini --set runtime.progress=none --set train.register=false --set train.output=no.h5 \
    "${world[@]}" "$@" >b.txt 2>&1
  local rc=$?
  [ $rc -eq 2 ] && grep -q -- "$pat" b.txt && [ ! -e no.h5 ] \
    && ok "$name: exit 2, $(grep -m1 'error:' b.txt | cut -c1-140)" || { bad "$name: rc $rc"; cat b.txt; }
}
refused "no global batch" 2 "needs \[train\] global_batch"
refused "3 ranks" 3 "both must be powers of two" --set train.global_batch=96 --set train.batch_size=16
refused "6 micro-batches" 2 "both must be powers of two" --set train.global_batch=96 --set train.batch_size=16
refused "nccl" 2 "comm = nccl" --set train.global_batch=64 --set runtime.comm=nccl
TSR_COMM_FAKE_NODES=3 refused "shm on uneven nodes" 4 "same power-of-two number of consecutive ranks on every node" \
  --set train.global_batch=64 --set runtime.comm=shm
refused "ring" 2 "allreduce_algorithm = ring" --set train.global_batch=64 --set runtime.allreduce_algorithm=ring
refused "sync_bn" 2 "sync_bn = true" --set train.global_batch=64 --set model.sync_bn=true
finish
