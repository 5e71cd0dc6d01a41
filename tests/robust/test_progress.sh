#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# runtime.progress = auto: a bar only where a person watches. Open MPI gives
# each rank a pseudo-terminal of its own, so the rank's stdout is a
# terminal even under `mpirun ... > log`; the decision follows what
# mpirun's own stdout is. A log gets plain lines (no carriage return, no
# escape code); a terminal (a pty from script(1)) gets the bar.
. "$(dirname "$0")/lib.sh"
fixtures
T=$TSR_BIN
run=("$TSR_MPIEXEC" --oversubscribe --bind-to none -n 2 "$T" train small.ini --set train.epochs=3
     --set train.log_every=2 --set runtime.progress=auto)
has_bar() { grep -q $'\r' "$1" && grep -q $'\033\\[K' "$1"; }

timeout 120 "${run[@]}" >log.txt 2>&1
rc=$?
[ $rc -eq 0 ] && ! grep -q $'\r' log.txt && ! grep -q $'\033' log.txt && grep -q 'epoch 3/3' log.txt \
  && ok "mpirun -n 2 ... > log: plain lines, no carriage return or escape code" \
  || { bad "mpirun > log (exit $rc)"; od -c log.txt | head; }
timeout 120 "${run[@]}" 2>&1 | cat >pipe.txt
! grep -q $'\r' pipe.txt && grep -q 'epoch 3/3' pipe.txt && ok "mpirun ... | cat: plain lines" || bad "mpirun | cat"
timeout 120 "$T" train small.ini --set train.epochs=3 --set runtime.progress=auto >alone.txt 2>&1
! grep -q $'\r' alone.txt && ok "one process > log: plain lines" || bad "one process > log"

# Under a terminal the bar is drawn, for mpirun and for one process.
printf -v cmd '%q ' "${run[@]}"
timeout 120 script -qec "$cmd" /dev/null >tty.txt 2>&1
has_bar tty.txt && ok "mpirun on a terminal: the bar is drawn" || { bad "no bar on a terminal"; od -c tty.txt | head; }
printf -v cmd '%q ' "$T" train small.ini --set train.epochs=3 --set runtime.progress=auto
timeout 120 script -qec "$cmd" /dev/null >tty1.txt 2>&1
has_bar tty1.txt && ok "one process on a terminal: the bar is drawn" || bad "no bar for one process on a terminal"
# The terminal's reader gets the bar, a log beside it does not: mpirun
# writes to a file while its own stdin/stderr are the terminal.
printf -v cmd '%q ' "${run[@]}"
timeout 120 script -qec "$cmd >inner.txt" /dev/null >/dev/null 2>&1
! grep -q $'\r' inner.txt && grep -q 'epoch 3/3' inner.txt \
  && ok "mpirun > log started from a terminal: plain lines" || { bad "mpirun > log from a terminal"; od -c inner.txt | head; }
finish
