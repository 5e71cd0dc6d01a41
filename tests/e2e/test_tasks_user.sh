#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The in-process task example (examples/tasks_user.c, public C API only) on
# 1, 2 and 3 ranks: the same estimate every time, every task counted by its
# callback, work done on the other ranks when there are some. 200000
# samples a task: with 20000 the whole farm took 0.1 s, and under CI's load
# rank 0 had run all 400 tasks before the others asked for one.
. "$(dirname "$0")/lib.sh"
EX="$TSR_BUILD/examples/tessera_tasks_user"
for np in 1 2 3; do
  timeout 120 "$TSR_MPIEXEC" --oversubscribe --bind-to none -n $np "$EX" --tasks 400 --samples 200000 > "u$np.out" 2>&1 \
    && ok "$np rank(s): $(head -1 "u$np.out")" || { bad "$np ranks failed"; cat "u$np.out"; }
done
est() { sed -n 's/^pi ~ \([0-9.]*\) .*/\1/p' "$1"; }
[ -n "$(est u1.out)" ] && [ "$(est u1.out)" = "$(est u2.out)" ] && [ "$(est u2.out)" = "$(est u3.out)" ] \
  && ok "the same estimate on 1, 2 and 3 ranks ($(est u1.out))" || bad "estimates differ"
awk -v e="$(est u1.out)" 'BEGIN { exit !(e > 3.13 && e < 3.15) }' && ok "close to pi" || bad "estimate $(est u1.out)"
grep -q '(0 on other ranks, 400 callbacks)' u1.out && ok "one rank: every task's callback ran" || bad "callbacks"
for np in 2 3; do
  n=$(sed -n 's/.*(\([0-9]*\) on other ranks.*/\1/p' "u$np.out")
  [ "${n:-0}" -ge 1 ] && ok "$np ranks: $n tasks ran on other ranks" || bad "$np ranks: no task ran on another rank"
done
finish
