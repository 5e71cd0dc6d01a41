#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The dashboard in a real browser: a stand-in for a training run's rank 0
# (serve_driver.c, built here against libtessera) publishes a status every
# 50 ms; headless Chromium loads GET / and must see the loss and accuracy
# plots drawn and growing, within one page load and between two loads; the
# loss on a log axis with train and test together, throughput, a bar per
# rank of its phases and the bottleneck report's suggestions; a screenshot
# is kept in the build directory (dashboard.png).
. "$(dirname "$0")/lib.sh"
: "${TSR_BUILD:?}"
BROWSER=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$BROWSER" ]; then
  echo "chromium is not installed (scripts/install-deps.sh installs it)"
  exit 1
fi
PID=
trap '[ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null; rm -rf "$WORK"' EXIT

cc -std=c17 -O1 -Wall -Werror -I"$TSR_SRC/include" "$TSR_SRC/tests/e2e/serve_driver.c" -o serve_driver \
  -L"$TSR_BUILD/src" -Wl,-rpath,"$TSR_BUILD/src" -ltessera -lm && ok "built the driver" || { bad "driver build"; finish; exit 1; }
mkdir -p run
./serve_driver run 120 >driver.out 2>&1 &
PID=$!
for _ in $(seq 100); do [ -s run/coordinator.addr ] && break; sleep 0.1; done
URL=http://$(head -1 run/coordinator.addr)
[ -s run/coordinator.addr ] && ok "coordinator at $URL" || { cat driver.out; bad "no coordinator"; finish; exit 1; }
sleep 1

# load N: dumps the DOM after the page has polled /status for a while.
load() {
  timeout 90 "$BROWSER" --headless --no-sandbox --disable-gpu --no-first-run --user-data-dir="$WORK/profile" \
    --virtual-time-budget=10000 --dump-dom "$URL/" >"dom$1.html" 2>"chromium$1.err"
}
attr() { sed -n "s/.*<body[^>]* data-$1=\"\([0-9]*\)\".*/\1/p" "dom$2.html" | head -1; }

load 1 && ok "chromium loaded the dashboard" || { tail -5 chromium1.err; bad "chromium failed"; finish; exit 1; }
first=$(attr first 1) points=$(attr points 1) updates=$(attr updates 1)
echo "load 1: first poll $first points, last $points points, $updates polls"
[ "${updates:-0}" -ge 2 ] && ok "the page polled /status $updates times" || bad "polls: '$updates'"
[ "${points:-0}" -gt "${first:-0}" ] && ok "the plot grew while the page was open ($first -> $points points)" \
  || bad "plot did not grow within the page: $first -> $points"
for id in loss accuracy; do
  n=$(grep -o "<svg id=\"$id\"[^>]*>.*</svg>" dom1.html | grep -o '<polyline points="[^"]*"' | head -1 | tr ' ' '\n' | grep -c ',')
  [ "${n:-0}" -ge 10 ] && ok "$id plot drawn with $n points" || bad "$id plot: ${n:-0} points"
done
n=$(grep -o "<svg id=\"loss\"[^>]*>.*</svg>" dom1.html | sed 's|</svg>.*||' | grep -o '<polyline' | wc -l)
[ "$n" -eq 2 ] && ok "loss plot: train and test curves together" || bad "loss plot: $n curves"
grep -o "<svg id=\"loss\"[^>]*>.*</svg>" dom1.html | sed 's|</svg>.*||' | grep -q '>0.1<' \
  && ok "loss on a log axis (decade ticks)" || bad "no decade ticks on the loss axis"
n=$(grep -o "<svg id=\"rate\"[^>]*>.*</svg>" dom1.html | sed 's|</svg>.*||' | grep -o '<polyline points="[^"]*"' | tr ' ' '\n' | grep -c ',')
[ "${n:-0}" -ge 10 ] && ok "throughput plot drawn with $n points" || bad "throughput plot: ${n:-0} points"
[ "$(attr phases 1)" = 2 ] && [ "$(grep -o 'data-phase="backward"' dom1.html | wc -l)" = 2 ] \
  && ok "a bar of phases per rank" || bad "phase bars: '$(attr phases 1)'"
[ "$(attr suggestions 1)" = 1 ] && grep -q 'rank 1 computes 3.0x' dom1.html \
  && ok "the report's suggestion shown" || bad "suggestions: '$(attr suggestions 1)'"
timeout 90 "$BROWSER" --headless --no-sandbox --disable-gpu --no-first-run --user-data-dir="$WORK/profile" \
  --hide-scrollbars --window-size=1180,1000 --virtual-time-budget=5000 --screenshot="$TSR_BUILD/dashboard.png" \
  "$URL/" >shot.out 2>&1
[ -s "$TSR_BUILD/dashboard.png" ] && ok "screenshot kept in $TSR_BUILD/dashboard.png" || { tail -3 shot.out; bad "no screenshot"; }
grep -q 'localhost cores 1' dom1.html && grep -q '>training<' dom1.html && ok "summary and ranks shown" \
  || bad "summary or rank table missing"
sleep 1.5
load 2 && ok "second load"
points2=$(attr first 2)
[ "${points2:-0}" -gt "${points:-0}" ] && ok "a later load shows more history ($points -> $points2)" \
  || bad "no new points on a later load: $points -> $points2"
kill "$PID" && wait "$PID"
rc=$?
PID=
[ $rc -eq 0 ] && ok "driver stopped cleanly" || bad "driver exit $rc"
[ ! -e run/coordinator.addr ] && ok "address file removed" || bad "address file left"
finish
