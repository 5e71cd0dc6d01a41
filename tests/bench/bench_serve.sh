#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The coordinator under wrk on loopback: POST /predict for the digits model
# against the same server answering a no-op route (GET /health), in the same
# run, alternating so load drifts hit both. Phases:
#   1. no-op and cached single-row /predict, alternated --rounds times (medians)
#   2. single-row /predict with the cache off, and with batching
#      (cache off, max_delay_us 500, max_batch 64): req/s, p99, mean batch rows
#   3. >= 1,000,000 cached requests at 256 connections: errors must be 0
#   4. memory: distinct random rows (every request a cache miss) with an 8 MB
#      cache, server RSS sampled before, during and after
# Builds nothing: build first (cmake ... && make -C build). Needs wrk.
#
# Usage: tests/bench/bench_serve.sh [BUILD_DIR] [--seconds S] [--rounds R] [--connections C]
#                                   [--wrk-threads T] [--server-threads N] [--million N]
#   BUILD_DIR         the build tree (default: build)
#   --seconds S       seconds per timed run in phases 1, 2 and 4 (default 5)
#   --rounds R        no-op/cached alternations (default 3)
#   --connections C   wrk connections (default 256)
#   --wrk-threads T   wrk threads (default 1)       --server-threads N  HTTP threads (default 0: cores)
#   --million N       requests in phase 3 (default 1000000; 0 skips it)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
build=build seconds=5 rounds=3 conns=256 wthreads=1 sthreads=0 million=1000000
while [ $# -gt 0 ]; do
  case $1 in
    --seconds) seconds=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --connections) conns=$2; shift 2 ;;
    --wrk-threads) wthreads=$2; shift 2 ;;
    --server-threads) sthreads=$2; shift 2 ;;
    --million) million=$2; shift 2 ;;
    -h|--help) sed -n '2,21p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "bench_serve.sh: unknown option $1" >&2; exit 2 ;;
    *) build=$1; shift ;;
  esac
done
case $build in /*) ;; *) build=$root/$build ;; esac
tessera=$build/tessera
[ -x "$tessera" ] || { echo "bench_serve.sh: $tessera not found; build first" >&2; exit 1; }
command -v wrk >/dev/null || { echo "bench_serve.sh: wrk not found (apt-get install wrk)" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/tessera-bench-serve.XXXXXX")
PID=
cleanup() {
  if [ -n "$PID" ]; then kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
cd "$work"

# The digits model, trained here (a few seconds).
cp "$root/examples/digits.ini" . && mkdir -p data run && cp "$root/examples/data/digits.h5" data/
OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 "$tessera" train digits.ini --set train.epochs=10 \
  --set runtime.progress=none --set checkpoint.final=false >train.out 2>&1 || { cat train.out; exit 1; }
/usr/bin/python3 - <<'PY'
import h5py, json
X = h5py.File("data/digits.h5", "r")["X_test"][:]
open("one.json", "w").write(json.dumps({"inputs": X[:1].tolist()}))
# Lua tables of distinct single-row bodies for the uncached phases.
with open("rows.lua", "w") as f:
    f.write("rows = {\n")
    for r in X:
        f.write("  [=[" + json.dumps({"inputs": [r.tolist()]}) + "]=],\n")
    f.write("}\n")
PY

# wrk scripts: each prints "RESULT requests rps errors p50_us p99_us" when done.
cat >result.lua <<'LUA'
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %d %.1f %d %.0f %.0f\n", summary.requests,
    summary.requests / (summary.duration / 1e6), e.connect + e.read + e.write + e.status + e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
LUA
cat >noop.lua <<'LUA'
dofile("result.lua")
LUA
cat >cached.lua <<'LUA'
dofile("result.lua")
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = io.open("one.json"); wrk.body = f:read("*a"); f:close()
LUA
cat >rows_cycle.lua <<'LUA'
dofile("result.lua")
dofile("rows.lua")
local i = 0
request = function()
  i = i % #rows + 1
  return wrk.format("POST", nil, {["Content-Type"] = "application/json"}, rows[i])
end
LUA
cat >random.lua <<'LUA'
dofile("result.lua")
math.randomseed(os.time())
request = function()
  local v = {}
  for j = 1, 64 do v[j] = string.format("%.4f", math.random()) end
  return wrk.format("POST", nil, {["Content-Type"] = "application/json"},
    '{"inputs":[[' .. table.concat(v, ",") .. ']]}')
end
LUA

start() { # start ARGS...: a coordinator on a free port
  rm -f run/coordinator.addr
  "$tessera" serve digits-model.h5 --run-dir run --set serve.threads="$sthreads" "$@" >serve.out 2>&1 &
  PID=$!
  for _ in $(seq 100); do [ -s run/coordinator.addr ] && break; sleep 0.1; done
  URL=http://$(head -1 run/coordinator.addr)
}
stop() { kill "$PID"; wait "$PID" || true; PID=; }
rss() { awk '/^VmRSS/ {print $2}' "/proc/$PID/status"; }
hwm() { awk '/^VmHWM/ {print $2}' "/proc/$PID/status"; }
# The server's CPU time (user + system) in clock ticks: per request, it does
# not depend on what else the machine runs, which req/s on a shared box does.
cpu() { awk '{print $14 + $15}' "/proc/$PID/stat"; }
# run SCRIPT PATH SECONDS [CONNS]: one wrk run; prints the RESULT fields and
# the server's CPU microseconds per request
run() {
  local c0 c1 out
  c0=$(cpu)
  out=$(wrk -t"$wthreads" -c"${4:-$conns}" -d"$3"s --timeout 10s -s "$1" "$URL$2" | awk '/^RESULT/ {print $2, $3, $4, $5, $6}')
  c1=$(cpu)
  echo "$out $(awk -v a="$c0" -v b="$c1" -v n="${out%% *}" -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.1f", n ? (b - a) * 1e6 / hz / n : 0}')"
}
median() { sort -g | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
fmt() { # fmt NAME "requests rps errors p50 p99 cpu_us"
  set -- "$1" $2
  printf '%-46s %10.0f %9.2f ms %9d %10s\n' "$1" "$3" "$(awk -v x="$6" 'BEGIN {print x / 1000}')" "$4" "$7"
}

echo "tessera coordinator under wrk: $(nproc) cores shared by wrk ($wthreads threads, $conns connections)"
echo "and the server ($([ "$sthreads" = 0 ] && echo "one HTTP thread per core" || echo "$sthreads HTTP threads"))"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine makes req/s noisy; CPU us/req is not)"
printf '%-46s %10s %12s %9s %10s\n' "phase" "req/s" "p99" "errors" "CPU us/req"

# 1. no-op against cached, alternated.
start
curl -s -o /dev/null -H 'Content-Type: application/json' --data-binary @one.json "$URL/predict" # fill the cache
noop=() cached=() ratios=() noop_cpu=() cached_cpu=()
for r in $(seq "$rounds"); do
  a=$(run noop.lua /health "$seconds")
  b=$(run cached.lua /predict "$seconds")
  fmt "round $r: GET /health (no-op)" "$a"
  fmt "round $r: POST /predict, cached single row" "$b"
  noop+=("$(echo "$a" | cut -d' ' -f2)") cached+=("$(echo "$b" | cut -d' ' -f2)")
  noop_cpu+=("$(echo "$a" | cut -d' ' -f6)") cached_cpu+=("$(echo "$b" | cut -d' ' -f6)")
  ratios+=("$(awk -v x="$(echo "$b" | cut -d' ' -f2)" -v y="$(echo "$a" | cut -d' ' -f2)" 'BEGIN {print x / y}')")
done
noop_m=$(printf '%s\n' "${noop[@]}" | median) cached_m=$(printf '%s\n' "${cached[@]}" | median)
ratio_m=$(printf '%s\n' "${ratios[@]}" | median)
hits=$(curl -s "$URL/cache" | /usr/bin/python3 -c 'import json,sys; d = json.load(sys.stdin); print(d["hits"], d["misses"])')
stop

# 2. the model path: cache off, without and with a batching delay.
start --set serve.cache_mb=0 --set serve.max_delay_us=0
u=$(run rows_cycle.lua /predict "$seconds")
fmt "POST /predict, uncached single row (delay 0)" "$u"
b1=$(curl -s "$URL/metrics" | awk '/^tessera_predict_batch_rows_sum/ {s = $2} /^tessera_predict_batch_rows_count/ {c = $2} END {printf "%.2f", s / c}')
stop
start --set serve.cache_mb=0 --set serve.max_delay_us=500 --set serve.max_batch=64
bt=$(run rows_cycle.lua /predict "$seconds")
fmt "POST /predict, batched (delay 500 us, max 64)" "$bt"
b2=$(curl -s "$URL/metrics" | awk '/^tessera_predict_batch_rows_sum/ {s = $2} /^tessera_predict_batch_rows_count/ {c = $2} END {printf "%.2f", s / c}')
stop

# 3. a million cached requests: zero errors.
if [ "$million" -gt 0 ]; then
  start
  curl -s -o /dev/null -H 'Content-Type: application/json' --data-binary @one.json "$URL/predict"
  secs=$(awk -v n="$million" -v r="$cached_m" 'BEGIN {s = int(1.25 * n / r) + 1; print s < 10 ? 10 : s}')
  rss0=$(rss)
  m=$(run cached.lua /predict "$secs" 256)
  rss1=$(rss) hwm1=$(hwm)
  fmt "POST /predict cached, 256 conns, ${secs}s" "$m"
  mreq=$(echo "$m" | cut -d' ' -f1) merr=$(echo "$m" | cut -d' ' -f3)
  stop
fi

# 4. bounded memory: every request a new row, an 8 MB cache evicting.
start --set serve.cache_mb=8
rssa=$(rss)
f=$(run random.lua /predict "$seconds")
rssb=$(rss)
g=$(run random.lua /predict "$seconds")
rssc=$(rss) hwmc=$(hwm)
fmt "POST /predict, random rows (all misses) 1" "$f"
fmt "POST /predict, random rows (all misses) 2" "$g"
cache=$(curl -s "$URL/cache" | /usr/bin/python3 -c 'import json,sys; d = json.load(sys.stdin); print(d["entries"], d["bytes"], d["evictions"])')
stop

echo
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "medians over $rounds rounds: no-op $noop_m req/s, cached /predict $cached_m req/s;" \
  "server CPU per request: no-op $(printf '%s\n' "${noop_cpu[@]}" | median) us," \
  "cached /predict $(printf '%s\n' "${cached_cpu[@]}" | median) us"
echo "cached / no-op: $(awk -v r="$ratio_m" 'BEGIN {printf "%.2f", r}') (median of per-round ratios; target >= 0.70)," \
  "cached rate target >= 50000 req/s; cache hits/misses: $hits"
echo "mean rows per model call: $b1 (delay 0), $b2 (delay 500 us)"
if [ "$million" -gt 0 ]; then
  echo "$mreq cached requests at 256 connections, $merr errors (target 0 over >= $million);" \
    "server RSS ${rss0} kB before, ${rss1} kB after, peak ${hwm1} kB"
fi
read -r ce cb cv <<<"$cache"
echo "random rows with an 8 MB cache: RSS ${rssa} -> ${rssb} -> ${rssc} kB (peak ${hwmc} kB);" \
  "cache $ce entries, $cb bytes, $cv evictions"
