#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The timeline under hostile paths and inputs: a trace path that cannot be
# written (under /proc, a directory or a FIFO where the file goes, a link to
# one of the run's inputs) is one warning per rank and training goes on,
# inputs untouched; a tiny ring drops the oldest events, counts them, says
# so and still writes a file that nests; bad keys are refused; tessera trace
# merge refuses bad inputs and outputs with one line and the documented code.
. "$(dirname "$0")/lib.sh"
fixtures
remember small.h5 small.ini model.h5

# traced NAME TRACE PATTERN: trains on 2 ranks with monitor.trace=TRACE; exit
# 0, a model, and every rank's one warning matching PATTERN.
traced() {
  local name=$1 trace=$2 pat=$3
  CASES=$((CASES + 1))
  rm -f out.h5
  mpi 2 train small.ini --set monitor.trace="$trace" --set train.epochs=2 >t.out 2>&1
  local rc=$? n
  n=$(grep -c "warning: rank [01]: no timeline: .*$pat.*training goes on" t.out)
  if [ $rc -eq 0 ] && [ -s out.h5 ] && [ "$n" -eq 2 ]; then
    ok "$name: trained, one warning per rank ($(grep -m1 'no timeline' t.out | cut -c1-150))"
  else
    bad "$name: exit $rc, $n warnings"; cat t.out
  fi
}
traced "trace under /proc" /proc/self/tessera/t.json "trace directory"
mkdir -p dir/t.rank0.json dir/t.rank1.json
traced "a directory where the file goes" dir/t.json "is a directory"
mkfifo f.rank0.json f.rank1.json
traced "a FIFO where the file goes" f.json "FIFO"
ln -s small.h5 in.rank0.json && ln -s small.h5 in.rank1.json
traced "a link to the training data" in.json "same file"
ln -s out.h5 mo.rank0.json && ln -s out.h5 mo.rank1.json
traced "a link to the model file" mo.json "same file"
intact "unwritable trace paths"

# A ring of 16 events: the oldest dropped, counted in the file, said once per write.
CASES=$((CASES + 1))
mpi 2 train small.ini --set monitor.trace=tiny.json --set monitor.trace_buffer=16 --set train.epochs=3 >tiny.out 2>&1
rc=$?
if [ $rc -eq 0 ] && grep -q 'warning: trace: the oldest [0-9]* of [0-9]* events were dropped' tiny.out \
  && $PY - <<'PY'; then ok "tiny ring: oldest dropped, counted and said; the file nests"; else bad "tiny ring (exit $rc)"; cat tiny.out; fi
import json
for r in (0, 1):
    d = json.load(open("tiny.rank%d.json" % r))
    assert d["otherData"]["dropped"] > 0, d["otherData"]
    depth = {}
    for e in d["traceEvents"]:
        if e["ph"] in "BE":
            depth[e["tid"]] = depth.get(e["tid"], 0) + (1 if e["ph"] == "B" else -1)
            assert depth[e["tid"]] >= 0, "an end without its begin"
    assert len([e for e in d["traceEvents"] if e["ph"] in "BE"]) <= 16
PY

hostile "trace_buffer below 16" 2 'monitor.*trace_buffer' "$TSR_BIN" train small.ini --set monitor.trace_buffer=8
hostile "trace_buffer not a number" 2 'trace_buffer' "$TSR_BIN" train small.ini --set monitor.trace_buffer=lots
hostile "unknown monitor key" 2 'trace_bufer' "$TSR_BIN" train small.ini --set monitor.trace_bufer=16
# A malformed TSR_FAULT_SLOW is no fault.
CASES=$((CASES + 1))
TSR_FAULT_SLOW=1:0.5 "$TSR_BIN" train small.ini >slow.out 2>&1 && TSR_FAULT_SLOW=x "$TSR_BIN" train small.ini >>slow.out 2>&1 \
  && ok "malformed TSR_FAULT_SLOW ignored" || { bad "TSR_FAULT_SLOW"; cat slow.out; }

# tessera trace merge.
"$TSR_BIN" train small.ini --set monitor.trace=good.json >/dev/null 2>&1 || bad "trace for merge"
cp good.rank0.json other.json
$PY -c "import json; d = json.load(open('good.rank0.json')); d['otherData']['tessera_rank'] = 1; json.dump(d, open('r1.json', 'w'))"
remember good.rank0.json r1.json
head -c 300 good.rank0.json >cut.json
printf '\x00\x01garbage' >bin.json
echo '{"traceEvents": []}' >noother.json
echo '[1, 2, 3]' >list.json
mkfifo pipe.json
hostile "merge: no action" 2 'no action' "$TSR_BIN" trace
hostile "merge: unknown action" 2 "unknown action 'frob'" "$TSR_BIN" trace frob
hostile "merge: no -o" 2 'expected -o OUT' "$TSR_BIN" trace merge good.rank0.json
hostile "merge: -o without a name" 2 '-o needs a file name' "$TSR_BIN" trace merge good.rank0.json -o
hostile "merge: no inputs" 2 'one or more per-rank trace files' "$TSR_BIN" trace merge -o m.json
hostile "merge: unknown option" 2 "unknown option '--fast'" "$TSR_BIN" trace merge --fast -o m.json good.rank0.json
hostile "merge: missing input" 3 'nope.json: no such file' "$TSR_BIN" trace merge -o m.json nope.json
hostile "merge: truncated JSON" 3 'cut.json: line .*not JSON' "$TSR_BIN" trace merge -o m.json cut.json
hostile "merge: binary garbage" 3 'bin.json: .*not JSON' "$TSR_BIN" trace merge -o m.json bin.json
hostile "merge: JSON, not a trace" 3 'noother.json: not a tessera trace' "$TSR_BIN" trace merge -o m.json noother.json
hostile "merge: a JSON list" 3 'list.json: not a tessera trace' "$TSR_BIN" trace merge -o m.json list.json
hostile "merge: a rank twice" 3 'other.json: rank 0 is already in an earlier input' \
  "$TSR_BIN" trace merge -o m.json good.rank0.json other.json
hostile "merge: a FIFO input" 3 'pipe.json.*FIFO' "$TSR_BIN" trace merge -o m.json pipe.json
hostile "merge: a directory input" 3 'dir.*directory' "$TSR_BIN" trace merge -o m.json dir
hostile "merge: output is an input" 2 'same file' "$TSR_BIN" trace merge -o r1.json good.rank0.json r1.json
hostile "merge: output is a directory" 2 'is a directory' "$TSR_BIN" trace merge -o dir good.rank0.json r1.json
hostile "merge: output under /proc" 4 'm.json' "$TSR_BIN" trace merge -o /proc/self/m.json good.rank0.json r1.json
[ ! -e m.json ] && ok "no merged file from a refused merge" || bad "m.json written by a refused merge"
"$TSR_BIN" trace merge -o m.json good.rank0.json r1.json >/dev/null && ok "the good inputs merge" || bad "good merge"
intact "merge inputs"
robust_finish
