# SPDX-License-Identifier: BSD-3-Clause
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

# remember FILE...: note FILE's bytes; intact NAME: every remembered file
# still has them and no temporary (".NAME.tmp.PID") is left in the work
# directory or below.
declare -A REMEMBERED=()
remember() {
  local f
  for f in "$@"; do REMEMBERED[$f]=$(sha256sum < "$f" | cut -d' ' -f1); done
}
intact() {
  local f changed=""
  for f in "${!REMEMBERED[@]}"; do
    same_bytes "$f" "${REMEMBERED[$f]}" || changed="$changed $f"
  done
  local temps
  temps=$(find . -name '.*.tmp.*' 2>/dev/null | head -3)
  if [ -n "$changed" ]; then bad "$1: changed:$changed"; return 1; fi
  if [ -n "$temps" ]; then bad "$1: temporary left: $temps"; rm -f $temps; return 1; fi
  ok "$1: inputs byte-identical, nothing left behind"
}

# fixtures: small.h5 (40 rows x 8 features, 3 classes, a test split),
# small.ini training it for one epoch into out.h5, and model.h5 trained
# from it (one rank).
fixtures() {
  $PY - <<'PY'
import h5py, numpy as np
rng = np.random.default_rng(0)
X = rng.random((40, 8), dtype=np.float32); y = (np.arange(40) % 3).astype(np.int32)
with h5py.File("small.h5", "w") as f:
    f["X"] = X; f["y"] = y; f["X_test"] = X[:8]; f["y_test"] = y[:8]
with h5py.File("test.h5", "w") as f:
    f["X"] = X[:8]; f["y"] = y[:8]
PY
  cat > small.ini <<'INI'
[data]
path = small.h5
[model]
hidden = 8
[train]
epochs = 1
batch_size = 4
output = out.h5
register = false
[runtime]
progress = none
[checkpoint]
final = false
INI
  "$TSR_BIN" train small.ini --set train.output=model.h5 >fixtures.log 2>&1 || { cat fixtures.log; exit 1; }
}
