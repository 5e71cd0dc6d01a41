#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# runtime.topology (a SLURM topology.conf, read by every rank when the
# gradient engine starts with allreduce_algorithm = hier) against hostile
# files, on 2 real ranks: missing, a directory, a FIFO, a device, malformed hostlists, a host
# in two leaves or in none, binary garbage, a NUL byte, an 8 KiB line; and
# hier where the topology gives nothing usable. Each case: its exit code,
# one error line naming the file (and line), nothing written, no hang.
# Then 4 ranks train with hier on two leaves of 2 (SLURM_TOPOLOGY_ADDR per
# rank, as slurmd sets it), and end with the same weights on every rank.
. "$(dirname "$0")/lib.sh"
fixtures
H=$(hostname)
M=("$TSR_MPIEXEC" --oversubscribe --bind-to none -n 2 "$TSR_BIN" train small.ini --set runtime.comm=mpi
   --set runtime.allreduce_algorithm=hier)
remember small.h5 small.ini

hostile "missing topology file" 3 "missing.conf: no such file (expected a SLURM topology.conf)" "${M[@]}" \
  --set runtime.topology=missing.conf
mkdir -p adir
hostile "a directory as topology file" 3 "adir is a directory, not a regular file" "${M[@]}" --set runtime.topology=adir
mkfifo fifo.conf
hostile "a FIFO as topology file (no writer: must not block)" 3 "fifo.conf is a FIFO, not a regular file" "${M[@]}" \
  --set runtime.topology=fifo.conf
hostile "a device as topology file" 3 "/dev/zero is a character device, not a regular file" "${M[@]}" \
  --set runtime.topology=/dev/zero
printf 'SwitchName=s0 Nodes=other[0-3]\n' > none.conf
hostile "this host in no leaf" 2 "none.conf: host '$H' is in no switch's Nodes=" "${M[@]}" --set runtime.topology=none.conf
printf 'SwitchName=s0 Nodes=%s\nSwitchName=s1 Nodes=x[3-1]\n' "$H" > range.conf
hostile "a range that runs backwards" 2 "range.conf:2: Nodes=: hostlist 'x\[3-1\]': bad range" \
  "${M[@]}" --set runtime.topology=range.conf
printf 'SwitchName=s0 Nodes=%s\nSwitchName=s1 Nodes=%s,b\n' "$H" "$H" > twice.conf
hostile "this host in two leaves" 2 "twice.conf:2: host '$H' is in switch s1 here and in s0 (line 1)" \
  "${M[@]}" --set runtime.topology=twice.conf
printf 'Nodes=%s\n' "$H" > noname.conf
hostile "a line without SwitchName" 2 "noname.conf:1: a line without SwitchName=" "${M[@]}" --set runtime.topology=noname.conf
head -c 3000 /dev/urandom | tr -d '#\000' | fold -w 100 > garbage.conf
printf '\n' >> garbage.conf
hostile "binary garbage" 2 "garbage.conf:[0-9]*: " "${M[@]}" --set runtime.topology=garbage.conf
$PY - h.err <<'PY' && ok "binary garbage: stderr is printable UTF-8" || bad "binary garbage: raw bytes reach the terminal"
import sys
t = open(sys.argv[1], "rb").read().decode("utf-8")
sys.exit(1 if [c for c in t if (ord(c) < 0x20 and c != "\n") or 0x7f <= ord(c) <= 0x9f] else 0)
PY
{ printf 'SwitchName=s0 Nodes='; head -c 9000 /dev/zero | tr '\0' 'n'; printf '\n'; } > long.conf
printf 'SwitchName=s0 Nodes=%s\000\n' "$H" > nul.conf
hostile "a NUL byte" 2 "nul.conf:1: a NUL byte" "${M[@]}" --set runtime.topology=nul.conf
hostile "an 8 KiB line" 2 "long.conf:1: line longer than" "${M[@]}" --set runtime.topology=long.conf
hostile "hier without a topology" 2 "hier needs ranks grouped by leaf switch or node.*SLURM_TOPOLOGY_ADDR is unset" \
  env -u SLURM_TOPOLOGY_ADDR "${M[@]}"
printf '# this host under one leaf\nSwitchName=s0 Nodes=%s\nSwitchName=top Switches=s0\n' "$H" > one.conf
hostile "hier on one leaf" 2 "1 group of 2 ranks" "${M[@]}" --set runtime.topology=one.conf
[ ! -e out.h5 ] && ok "no model written by any refused run" || bad "a refused run wrote out.h5"
intact "refused topologies"
# 4 ranks, leaves {0,1} and {2,3}: hier trains, and the run says so
cat > leaf.sh <<'SH'
#!/bin/sh
SLURM_TOPOLOGY_ADDR=top.leaf$((OMPI_COMM_WORLD_RANK / 2)).node$OMPI_COMM_WORLD_RANK exec "$@"
SH
chmod +x leaf.sh
if timeout 120 "$TSR_MPIEXEC" --oversubscribe --bind-to none -n 4 ./leaf.sh "$TSR_BIN" train small.ini \
     --set runtime.comm=mpi --set runtime.allreduce_algorithm=hier --set runtime.progress=lines >good.out 2>&1 &&
   [ -s out.h5 ]; then
  ok "4 ranks train with hier on two leaves of 2"
else
  bad "hier on two leaves failed: $(tail -3 good.out)"
fi
grep -q "hier" good.out && ok "the run names hier" || bad "the run does not say it ran hier: $(head -5 good.out)"
robust_finish
