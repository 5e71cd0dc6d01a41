#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Supercomputer-scale allreduce, measured by running tessera's own comm code
# under SimGrid's SMPI (the TESSERA_SIMGRID build, build/simgrid/) on
# simulated clusters, beside SMPI's own MPI_Allreduce (Open MPI's selector)
# on the same platform; then the analytic cost model fitted to part of the
# simulations and checked on the rest (scale_model.py). docs/SCALING.md has
# the results.
#
# Platforms (written into OUT; see platform() below): "flat", 256 hosts on
# 25 Gb/s, 1 us links to one non-blocking switch; "fattree", 256 hosts in a
# two-level fat-tree, 16 hosts under each leaf switch, each leaf with 4 x
# 25 Gb/s up (4:1 tapered), every link 1 us. P ranks run on the first P
# hosts (block placement). Each run is one smpirun of bench_allreduce_sim --tsv for one
# method and size (one timed iteration: simulated time is deterministic),
# wrapped in /usr/bin/time for the simulation's own wall time and memory.
# Sums are charged at TSR_SIM_REDUCE_GBPS (10 GB/s of sums written, the
# same for tessera and for allreduce-op, SMPI's MPI_Allreduce with a
# user-defined sum that charges it; plain "allreduce" sums for free).
#
# --validate: the same bench with real Open MPI on 2 and 3 ranks here,
# against SMPI on a platform calibrated to this machine by bench_calibrate
# at each size (latency, exchange bandwidth, the sum's rate): one host of 2
# cores whose memory every message crosses, error per size. Run it on an
# idle machine: real and calibration runs minutes apart under different
# loads say nothing.
#
# The sweep: METHODS (default tessera's auto, SMPI's MPI_Allreduce with free
# and with charged sums) on every platform, rank count and size; the
# DETAIL_METHODS (ring and rabenseifner by name, for the model's fit) on
# DETAIL_RANKS x DETAIL_SIZES (the ring's 2(P-1) rounds of 8 pieces make
# 256-rank rings slow to simulate). Runs already in OUT/sim.tsv are skipped,
# so an interrupted sweep resumes.
#
# Usage: tests/bench/run_scale_bench.sh [BUILD_DIR] [--out DIR] [--platforms flat,fattree]
#          [--ranks 16,32,48,64,128,256] [--sizes 1M,4M,16M,64M,256M] [--methods LIST]
#          [--detail-methods LIST] [--detail-ranks LIST] [--detail-sizes LIST]
#          [--validate] [--no-sweep] [--model-only]
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
build=$root/build out="" platforms=flat,fattree ranks=16,32,48,64,128,256 sizes=1M,4M,16M,64M,256M
methods=mpi:auto:0,allreduce,allreduce-op
detail_methods=mpi:ring:0,mpi:rabenseifner:0 detail_ranks=16,32,48,64,128 detail_sizes=1M,4M,16M,64M
validate=0 sweep=1 model_only=0
while [ $# -gt 0 ]; do
  case $1 in
    --out) out=$2; shift 2 ;;
    --platforms) platforms=$2; shift 2 ;;
    --ranks) ranks=$2; shift 2 ;;
    --sizes) sizes=$2; shift 2 ;;
    --methods) methods=$2; shift 2 ;;
    --detail-methods) detail_methods=$2; shift 2 ;;
    --detail-ranks) detail_ranks=$2; shift 2 ;;
    --detail-sizes) detail_sizes=$2; shift 2 ;;
    --validate) validate=1; shift ;;
    --no-sweep) sweep=0; shift ;;
    --model-only) model_only=1; shift ;;
    -*) echo "run_scale_bench.sh: unknown option $1" >&2; exit 2 ;;
    *)
      [ -d "$1" ] || { echo "run_scale_bench.sh: build directory $1 not found" >&2; exit 1; }
      build=$(cd "$1" && pwd); shift ;;
  esac
done
out=${out:-$build/scale-bench}
mkdir -p "$out"
sim=$build/simgrid/bench_allreduce_sim
PY=/usr/bin/python3
if [ "$model_only" = 1 ]; then
  exec $PY "$here/scale_model.py" "$out"
fi
[ -x "$sim" ] || { echo "run_scale_bench.sh: $sim missing: build with TESSERA_SIMGRID (libsimgrid-dev)" >&2; exit 1; }
export TSR_SIM_REDUCE_GBPS=${TSR_SIM_REDUCE_GBPS:-10}
# Sums charged to the simulated hosts but not done (the buffers are shared
# garbage anyway): the simulated time is the same, the host's work is not
# (paging in and adding P x the buffer was most of a 256-rank simulation's
# CPU time).
export TSR_SIM_SKIP_SUMS=${TSR_SIM_SKIP_SUMS:-1}

# The model SMPI runs: links carry exactly their bandwidth and latency (no
# TCP factors, no cross traffic), sums are charged, not timed live, and big
# buffers are shared between the simulated ranks (their contents are
# garbage, so no run checks its sums: tests/simgrid does that).
SMPI_CFG=(--cfg=smpi/host-speed:1Gf --cfg=smpi/simulate-computation:no --cfg=smpi/bw-factor:0:1
          --cfg=smpi/lat-factor:0:1 --cfg=network/crosstraffic:0 --cfg=smpi/test:0 --cfg=smpi/coll-selector:ompi
          --cfg=smpi/shared-malloc:local --cfg=smpi/auto-shared-malloc-thresh:1048576 --log=root.thres:critical)

# platform NAME HOSTS BW LAT: writes OUT/NAME.xml and OUT/NAME.hosts, the
# hostfile that puts rank i on host ni. Without one, SMPI places ranks in its
# own host order, which sorts names as strings (n0, n1, n10, ..., n100, ...):
# on the fat-tree, ring neighbours then sat on different leaves and every
# method lost a third of the link at 64 ranks to the 4:1 uplinks.
#   flat: every host on its own full-duplex link to one non-blocking switch
#     (a crossbar: a shared backbone link, even FATPIPE, ties every flow
#     into one constraint and made SimGrid's solver 20x slower at 256 ranks);
#   fattree: 16-host leaf switches as above, each joined to the spine by one
#     full-duplex link of 4 x BW (four uplinks with ideal ECMP: 4:1 tapered),
#     the spine non-blocking. (SimGrid's own FAT_TREE cluster shares each
#     switch-to-switch link between its two directions, which halves a ring
#     across leaves, so it is not used.)
platform() {
  local name=$1 hosts=$2 bw=$3 lat=$4 f="$out/$1.xml" leaves i j
  {
    echo "<?xml version='1.0'?>"
    echo '<!DOCTYPE platform SYSTEM "https://simgrid.org/simgrid.dtd">'
    echo '<platform version="4.1">'
    if [ "$name" = fattree ]; then
      leaves=$((hosts / 16))
      echo '  <zone id="world" routing="Full">'
      for ((i = 0; i < leaves; i++)); do
        echo "    <cluster id=\"leaf$i\" prefix=\"n\" suffix=\"\" radical=\"$((i * 16))-$((i * 16 + 15))\" speed=\"1Gf\" bw=\"$bw\" lat=\"$lat\" router_id=\"sw$i\"/>"
      done
      for ((i = 0; i < leaves; i++)); do
        echo "    <link id=\"up$i\" bandwidth=\"$(awk -v b="${bw%Gbps}" 'BEGIN {print 4 * b}')Gbps\" latency=\"$lat\" sharing_policy=\"SPLITDUPLEX\"/>"
      done
      for ((i = 0; i < leaves; i++)); do
        for ((j = 0; j < leaves; j++)); do
          [ $i = $j ] && continue
          echo "    <zoneRoute src=\"leaf$i\" dst=\"leaf$j\" gw_src=\"sw$i\" gw_dst=\"sw$j\" symmetrical=\"NO\"><link_ctn id=\"up$i\" direction=\"UP\"/><link_ctn id=\"up$j\" direction=\"DOWN\"/></zoneRoute>"
        done
      done
      echo '  </zone>'
    else
      echo "  <cluster id=\"c\" prefix=\"n\" suffix=\"\" radical=\"0-$((hosts - 1))\" speed=\"1Gf\" bw=\"$bw\" lat=\"$lat\"/>"
    fi
    echo '</platform>'
  } > "$f"
  for ((i = 0; i < hosts; i++)); do echo "n$i"; done > "$out/$name.hosts"
  # The SLURM topology.conf the engines read (runtime.topology): the
  # fat-tree's leaves of 16 hosts; the flat cluster's one switch (one
  # leaf: auto runs flat there, hier is refused).
  {
    echo "# $name: written by run_scale_bench.sh"
    if [ "$name" = fattree ]; then
      for ((i = 0; i < hosts / 16; i++)); do echo "SwitchName=sw$i Nodes=n[$((i * 16))-$((i * 16 + 15))]"; done
      echo "SwitchName=spine Switches=sw[0-$((hosts / 16 - 1))]"
    else
      echo "SwitchName=sw0 Nodes=n[0-$((hosts - 1))]"
    fi
  } > "$out/$name.topology.conf"
}

# Proportional memory (Pss: shared pages divided among their sharers, so
# SMPI's shared buffers count once) of PID and its descendants, in KiB.
pss_kb() {
  local pids=$1 all=$1 next
  while [ -n "$pids" ]; do
    next=$(for q in $pids; do ps -o pid= --ppid "$q" 2>/dev/null || true; done | tr '\n' ' ')
    all="$all $next"
    pids=${next// /}
    pids=${pids:+$next}
  done
  for q in $all; do awk '/^Pss:/ {print $2}' "/proc/$q/smaps_rollup" 2>/dev/null || true; done |
    awk '{s += $1} END {print s + 0}'
}

# one PLATFORM_FILE LABEL P SIZE METHOD: one simulation, one line of
# OUT/sim.tsv with its wall time and peak Pss. A simulation whose memory
# passes MEM_LIMIT_KB is stopped (the machine is shared). SMPI's own
# collectives allocate their buffers for real, outside shared malloc:
# MPI_Allreduce runs only where P x SIZE <= 4 GiB.
MEM_LIMIT_KB=${TSR_SIM_MEM_LIMIT_KB:-10000000}
one() {
  local plat=$1 label=$2 p=$3 size=$4 method=$5 log="$out/run.log" res="$out/last.txt"
  local bytes peak=0 now rc t0 t1 line
  bytes=$(numfmt --from=iec "$size")
  if [[ $method == allreduce* ]] && [ $((p * bytes)) -gt $((4 << 30)) ]; then
    printf '%s\t%s\t%s\t%s\tskipped: SMPI buffers of %s x %s exceed the memory here\n' "$label" "$bytes" "$method" "$p" \
      "$p" "$size" >> "$out/skipped.tsv"
    return 0
  fi
  t0=$(date +%s.%N)
  nice -n "${TSR_SIM_NICE:-5}" /usr/bin/time -f '%U %S' -o "$out/cpu.txt" \
    smpirun -np "$p" -hostfile "${plat%.xml}.hosts" -platform "$plat" "${SMPI_CFG[@]}" "$sim" --min-bytes "$size" --max-bytes "$size" \
    --methods "$method" --iters 1 --warmup 0 --no-check --tsv --topology "${plat%.xml}.topology.conf" > "$res" 2>&1 &
  local pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    now=$(pss_kb "$pid")
    [ "$now" -gt "$peak" ] && peak=$now
    if [ "$now" -gt "$MEM_LIMIT_KB" ]; then
      echo "run_scale_bench.sh: $label P=$p $size $method passed ${MEM_LIMIT_KB} KiB: stopped" >&2
      pkill -KILL -P "$pid" 2>/dev/null
      kill -KILL "$pid" 2>/dev/null
    fi
    sleep 1
  done
  rc=0
  wait "$pid" || rc=$?
  t1=$(date +%s.%N)
  line=$(grep -P '^\d+\t' "$res" | head -1 || true)
  if [ "$rc" != 0 ] || [ -z "$line" ]; then
    { echo "== $label P=$p $size $method rc=$rc"; cat "$res"; } >> "$log"
    echo "run_scale_bench.sh: $label P=$p $size $method failed (rc $rc, see $log)" >&2
    return 0
  fi
  cpu=$(awk 'NF == 2 {printf "%.2f", $1 + $2}' "$out/cpu.txt")
  load=$(cut -d' ' -f1 /proc/loadavg)
  printf '%s\t%s\t%.2f\t%s\t%s\t%s\n' "$label" "$line" "$(awk -v a="$t0" -v b="$t1" 'BEGIN {print b - a}')" "$peak" \
    "$cpu" "$load" >> "$out/sim.tsv"
  printf '%-8s P=%-4s %-5s %-20s sim %-12s busbw %-8s wall %6.1f s  cpu %s s  load %s  Pss %s KiB\n' "$label" "$p" \
    "$size" "$method" "$(echo "$line" | cut -f5)" "$(echo "$line" | cut -f7)" \
    "$(awk -v a="$t0" -v b="$t1" 'BEGIN {print b - a}')" "$cpu" "$load" "$peak"
}

if [ "$sweep" = 1 ]; then
  platform flat 256 25Gbps 1us
  platform fattree 256 25Gbps 1us
  [ -s "$out/sim.tsv" ] || printf '#platform\tsize\tmethod\tranks\titers\tseconds\talgbw\tbusbw\twrong\talgorithm\twall_s\tpss_kb\tcpu_s\tload1\n' > "$out/sim.tsv"
  echo "# simulations: platform P size method -> simulated seconds, busbw GB/s, wall s, peak Pss (appended to $out/sim.tsv)"
  grid() { # METHODS RANKS SIZES
    local plat p size m bytes
    for plat in ${platforms//,/ }; do
      for p in ${2//,/ }; do
        for size in ${3//,/ }; do
          bytes=$(numfmt --from=iec "$size")
          for m in ${1//,/ }; do
            if awk -F'\t' -v a="$plat" -v b="$bytes" -v c="$m" -v d="$p" \
                 '$1 == a && $2 == b && $3 == c && $4 == d {found = 1} END {exit !found}' "$out/sim.tsv"; then
              continue
            fi
            one "$out/$plat.xml" "$plat" "$p" "$size" "$m"
          done
        done
      done
    done
  }
  start=$(date +%s)
  grid "$methods" "$ranks" "$sizes"
  [ -n "$detail_methods" ] && grid "$detail_methods" "$detail_ranks" "$detail_sizes"
  echo "# sweep: $(($(date +%s) - start)) s of wall time"
fi

if [ "$validate" = 1 ]; then
  . "$root/scripts/env.sh"
  real=$build/tests/bench/bench_allreduce cal=$build/tests/bench/bench_calibrate
  vm=mpi:auto:0,mpi:ring:0,mpi:rabenseifner:0,mpi:alltoall:0
  printf '#ranks\tsize\tmethod\treal_s\tsim_s\n' > "$out/validate.tsv"
  : > "$out/calibrate.txt"
  for p in 2 3; do
    mpirun --oversubscribe -n "$p" "$real" --min-bytes 256K --max-bytes 64M --methods "$vm" --tsv > "$out/real-$p.tsv"
  done
  # Per size M, a platform from bench_calibrate at M/2 bytes (the bytes each
  # of 2 ranks sends in a round): this machine is one host with 2 cores, so
  # all ranks run on host n0 and every message goes over its memory: a
  # FATPIPE of the exchange rate X (one core copying) and a SHARED bus of 2X
  # (both cores copying at once), latency the ping-pong's; sums charged at
  # the measured rate on the host's cores, which 3 ranks share.
  for size in 256K 1M 4M 16M 64M; do
    bytes=$(numfmt --from=iec "$size")
    mpirun -n 2 "$cal" --bytes $((bytes / 2)) > "$out/cal.txt"
    sed "s/^/$size /" "$out/cal.txt" >> "$out/calibrate.txt"
    lat=$(awk '/^latency/ {print $2}' "$out/cal.txt")
    bw=$(awk '/^iexchange/ {print $2}' "$out/cal.txt")
    red=$(awk '/^reduce/ {printf "%.4f", $2 / 1e9}' "$out/cal.txt")
    {
      echo "<?xml version='1.0'?>"
      echo '<!DOCTYPE platform SYSTEM "https://simgrid.org/simgrid.dtd">'
      echo '<platform version="4.1">'
      echo '  <zone id="machine" routing="Full">'
      echo '    <host id="n0" speed="1Gf" core="2"/>'
      echo "    <link id=\"bus\" bandwidth=\"$(awk -v x="$bw" 'BEGIN {printf "%.0f", 2 * x}')Bps\" latency=\"${lat}s\" sharing_policy=\"SHARED\"/>"
      echo "    <link id=\"copy\" bandwidth=\"${bw}Bps\" latency=\"0s\" sharing_policy=\"FATPIPE\"/>"
      echo '    <route src="n0" dst="n0"><link_ctn id="bus"/><link_ctn id="copy"/></route>'
      echo '  </zone>'
      echo '</platform>'
    } > "$out/machine.xml"
    for p in 2 3; do
      for ((i = 0; i < p; i++)); do echo n0; done > "$out/machine.hosts"
      TSR_SIM_REDUCE_GBPS=$red smpirun -np "$p" -hostfile "$out/machine.hosts" -platform "$out/machine.xml" "${SMPI_CFG[@]}" \
        "$sim" --min-bytes "$size" --max-bytes "$size" --methods "$vm" --iters 1 --warmup 0 --no-check --tsv \
        > "$out/sim.txt" 2>/dev/null
      join -t $'\t' <(awk -F'\t' '!/^#/ {print $1 ":" $2 "\t" $5}' "$out/real-$p.tsv" | sort) \
                    <(awk -F'\t' '!/^#/ {print $1 ":" $2 "\t" $5}' "$out/sim.txt" | sort) |
        awk -F'\t' -v p="$p" '{split($1, k, ":"); printf "%s\t%s\t%s:%s:%s\t%s\t%s\n", p, k[1], k[2], k[3], k[4], $2, $3}' \
        >> "$out/validate.tsv"
    done
  done
fi
$PY "$here/scale_model.py" "$out"
