# Helpers for the hostile-input suite (sourced): tests/e2e/lib.sh plus
# checks that every case ends as promised: the documented exit code, one
# error line naming what was wrong, no hang, nothing left behind.
. "$(dirname "${BASH_SOURCE[0]}")/../e2e/lib.sh"
CASES=0

# hostile NAME CODE PATTERN CMD...: CMD exits CODE within 60 s with exactly
# one "error:" line on stderr that matches PATTERN.
hostile() {
  local name=$1 code=$2 pat=$3; shift 3
  CASES=$((CASES + 1))
  timeout 60 "$@" >h.out 2>h.err
  local rc=$?
  if [ $rc -eq 124 ]; then bad "$name: hung"; return 1; fi
  if [ $rc -ne "$code" ]; then bad "$name: exit $rc, expected $code"; tail -5 h.err; return 1; fi
  if ! grep -q -- "$pat" h.err; then bad "$name: stderr lacks '$pat'"; tail -5 h.err; return 1; fi
  local lines
  lines=$(grep -c 'error:' h.err)
  if [ "$lines" -ne 1 ]; then bad "$name: $lines error lines, expected 1"; cat h.err; return 1; fi
  ok "$name ($(grep -m1 'error:' h.err))"
}

# same_bytes FILE SUM: FILE still has the sha256 SUM (an input left untouched).
same_bytes() {
  [ "$(sha256sum < "$1" | cut -d' ' -f1)" = "$2" ]
}

robust_finish() {
  echo "$CASES hostile cases"
  finish
}
