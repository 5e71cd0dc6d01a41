#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# tessera apply's reductions (stats, a plugin's partials) killed with
# SIGKILL and rerun: each rank's saved progress beside the -o result lets
# the rerun, on another number of ranks, skip the partitions reduced before
# and give the same bytes as an uninterrupted run; killed twice (the second
# time during the resumed run) the same; saved files of other arguments or
# damaged ones are not used; nothing is left once the result is written.
. "$(dirname "$0")/lib.sh"

$PY - <<'PY'
import h5py, numpy as np
rng = np.random.default_rng(11)
X = rng.normal(1, 3, (30011, 5)).astype(np.float32)
X[17, 3] = np.nan
X[:, 1] = rng.integers(-5, 5, len(X))
with h5py.File("d.h5", "w") as f:
    f["X"] = X
PY
S=(apply stats --input d.h5 --partition-rows 300 --quiet)
mpi 2 "${S[@]}" -o ref.json >ref.txt 2>&1 || bad "uninterrupted stats: $(tail -3 ref.txt)"

saved() { ls -a | grep -c "^\.$1\.tmp\.apply\.r[0-9]*$"; }

# killed: the first rank to finish 6 partitions kills itself (101 partitions:
# one of the 2 ranks gets there whatever the load), progress saved after each
TSR_FAULT_KILL=-1:6 mpi 2 "${S[@]}" -o k.json --save-every 0 >k1.txt 2>&1
[ ! -e k.json ] && [ "$(saved k.json)" -ge 1 ] && ok "killed on 2 ranks: no result, $(saved k.json) saved files" \
  || { bad "after the kill"; ls -a; tail -5 k1.txt; }
mpi 3 "${S[@]}" -o k.json >k2.txt 2>&1 || bad "rerun: $(tail -3 k2.txt)"
grep -qE 'resuming k.json: ([6-9]|[1-9][0-9]+) of 101 partitions were reduced before' k2.txt \
  && ok "rerun on 3 ranks resumed: $(grep -o '[0-9]* of 101' k2.txt)" || { bad "no resume line"; cat k2.txt; }
cmp -s ref.json k.json && ok "resumed stats: the same bytes as the uninterrupted run" || bad "resumed stats differ"
[ "$(saved k.json)" = 0 ] && ok "saved files removed once the result is written" || bad "saved files left"

# killed twice, on 1 rank each time (so the kills fall at fixed partitions:
# with more ranks the others may finish the rest first), finished on 3
TSR_FAULT_KILL=0:30 mpi 1 "${S[@]}" -o t.json --save-every 0 >t1.txt 2>&1
TSR_FAULT_KILL=0:20 mpi 1 "${S[@]}" -o t.json --save-every 0 >t2.txt 2>&1
n1=$(grep -o 'resuming t.json: [0-9]*' t2.txt | grep -o '[0-9]*$')
mpi 3 "${S[@]}" -o t.json >t3.txt 2>&1 || bad "third run: $(tail -3 t3.txt)"
n2=$(grep -o 'resuming t.json: [0-9]*' t3.txt | grep -o '[0-9]*$')
[ "$n1" = 30 ] && [ "$n2" = 50 ] && cmp -s ref.json t.json \
  && ok "killed twice (1 rank, after 30 then 20 more partitions), finished on 3: resumed $n1 then $n2, same bytes" \
  || { bad "twice killed: '$n1' '$n2'"; cat t2.txt t3.txt; }

# saved files of another partition size are not used (a fresh start)
TSR_FAULT_KILL=0:3 mpi 1 "${S[@]}" -o o.json --save-every 0 >o1.txt 2>&1
mpi 2 apply stats --input d.h5 --partition-rows 500 --quiet -o o.json >o2.txt 2>&1 || bad "other args: $(tail -2 o2.txt)"
mpi 2 apply stats --input d.h5 --partition-rows 500 --quiet -o o500.json >o3.txt 2>&1
! grep -q resuming o2.txt && cmp -s o.json o500.json && [ "$(saved o.json)" = 0 ] \
  && ok "another partition size: saved progress not used, removed" || { bad "other args"; cat o2.txt; }

# a damaged saved file is not used: its partitions are reduced again, same bytes
TSR_FAULT_KILL=0:6 mpi 1 "${S[@]}" -o dmg.json --save-every 0 >d1.txt 2>&1
f=.dmg.json.tmp.apply.r0
[ -f "$f" ] && printf 'XXXX' | dd of="$f" bs=1 seek=200 conv=notrunc status=none
mpi 2 "${S[@]}" -o dmg.json >d2.txt 2>&1 || bad "damaged rerun: $(tail -3 d2.txt)"
[ -f d1.txt ] && ! grep -q resuming d2.txt && cmp -s ref.json dmg.json && [ "$(saved dmg.json)" = 0 ] \
  && ok "a damaged saved file is not used (nothing resumed), removed; same bytes" || { bad "damaged saved file"; cat d2.txt; }

# a result named with glob characters: its own saved files, and only those,
# are resumed and removed (another run's ".r1.json..." files stay)
TSR_FAULT_KILL=0:4 mpi 1 "${S[@]}" -o 'r[1]*.json' --save-every 0 >g1.txt 2>&1
TSR_FAULT_KILL=0:3 mpi 1 "${S[@]}" -o r1x.json --save-every 0 >g2.txt 2>&1
mpi 2 "${S[@]}" -o 'r[1]*.json' >g3.txt 2>&1 || bad "glob-named rerun: $(tail -3 g3.txt)"
grep -q "resuming r\[1\]\*.json: 4 of 101" g3.txt && cmp -s ref.json 'r[1]*.json' && [ "$(saved 'r\[1\]\*.json')" = 0 ] \
  && [ "$(saved r1x.json)" = 1 ] && ok "a result named r[1]*.json: its 4 partitions resumed, another run's saved file left alone" \
  || { bad "glob-named result"; cat g3.txt; ls -a; }

# a plugin's reduction (examples/apply/colsum.c)
cc -shared -fPIC -O2 -I"$TSR_SRC/include" "$TSR_SRC/examples/apply/colsum.c" -o libcolsum.so || bad "cc colsum.c"
R=(apply ./libcolsum.so --input d.h5 --partition-rows 250 --quiet)
mpi 2 "${R[@]}" -o cref.json >c0.txt 2>&1 || bad "colsum: $(tail -3 c0.txt)"
TSR_FAULT_KILL=0:5 mpi 1 "${R[@]}" -o c.json --save-every 0 >c1.txt 2>&1
[ "$(saved c.json)" = 1 ] && [ ! -e c.json ] && ok "reduction plugin killed on 1 rank: saved progress, no result" || bad "colsum kill"
mpi 3 "${R[@]}" -o c.json >c2.txt 2>&1 || bad "colsum rerun: $(tail -3 c2.txt)"
grep -q 'resuming c.json: 5 of 121' c2.txt && cmp -s cref.json c.json && [ "$(saved c.json)" = 0 ] \
  && ok "reduction plugin resumed on 3 ranks: $(grep -o '[0-9]* of [0-9]*' c2.txt), same bytes" \
  || { bad "colsum resume"; cat c2.txt; }
finish
