#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The benchmark scripts (tests/bench/run_*.sh) refuse what they cannot
# use before they start anything: an unknown option exits 2, a missing
# build exits 1, each with one line on stderr that names the option or
# the path; a bench's own checks (--config, --micro, a part's name) the
# same. A script that took an option for its build directory ran the
# whole bench (run_sweep_bench.sh) or stopped on a shell error.
. "$(dirname "$0")/lib.sh"
B=$TSR_SRC/tests/bench
CASES=0

# refused NAME CODE PATTERN CMD...: exits CODE within 30 s, stderr is one
# line matching PATTERN, stdout is empty.
refused() {
  local name=$1 code=$2 pat=$3; shift 3
  CASES=$((CASES + 1))
  timeout 30 "$@" >r.out 2>r.err </dev/null
  local rc=$? lines
  lines=$(wc -l <r.err)
  if [ $rc -eq 124 ]; then bad "$name: hung"; return 1; fi
  if [ $rc -ne "$code" ]; then bad "$name: exit $rc, expected $code"; head -5 r.err; return 1; fi
  if [ "$lines" -ne 1 ] || [ -s r.out ]; then bad "$name: $lines stderr lines, stdout $(wc -c <r.out) bytes"; head -5 r.err r.out; return 1; fi
  if ! grep -q -- "$pat" r.err; then bad "$name: stderr lacks '$pat'"; cat r.err; return 1; fi
  ok "$name ($(cat r.err))"
}

n=0
for s in "$B"/run_*.sh; do
  n=$((n + 1))
  name=$(basename "$s")
  refused "$name --no-such-option" 2 "no-such-option" bash "$s" --no-such-option
  case $name in
    run_comm_regress.sh | run_scale_bench.sh) what="build directory /nonexistent-build" ;;
    run_gpu_bench.sh | run_train_bench.sh) what="/nonexistent-build/tests/bench" ;;
    *) what="/nonexistent-build/tessera" ;;
  esac
  refused "$name /nonexistent-build" 1 "$what" bash "$s" /nonexistent-build
done
[ "$n" -ge 18 ] && ok "$n bench scripts checked" || bad "only $n bench scripts found under $B"

# Each bench's own arguments, checked before any run.
BUILD=$(dirname "$TSR_BIN")
refused "run_scaling_bench.sh --config missing" 2 "nope.ini: no such file" bash "$B/run_scaling_bench.sh" "$BUILD" --config nope.ini
refused "run_accum_bench.sh --micro 0" 2 "micro" bash "$B/run_accum_bench.sh" "$BUILD" --micro 0
refused "run_apply_bench.sh unknown part" 2 "unknown part 'nope'" bash "$B/run_apply_bench.sh" "$BUILD" nope
robust_finish
