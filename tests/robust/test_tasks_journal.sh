#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Hostile journals for tessera tasks: a directory that cannot be written,
# a damaged record (refused by number, the file untouched), a torn last
# record (cut off, the farm goes on), a file that is not a journal, a full
# disk under the journal (dispatching stops, one error line, exit 4, the
# journal still replays and a later run finishes), two farms on one journal.
. "$(dirname "$0")/lib.sh"
T=$TSR_BIN
for i in $(seq 20); do echo "echo t$i"; done > twenty.txt

hostile journal-is-file 4 'journal directory: .*plain' sh -c "touch plain && exec $T tasks run twenty.txt --journal plain/j"
hostile journal-in-proc 4 'journal directory' "$T" tasks run twenty.txt --journal /proc/tessera-journal
# Mounts need root: said, not skipped silently.
if mkdir ro && mount -t tmpfs -o ro,size=64k tmpfs ro 2>/dev/null; then
  hostile journal-read-only 4 'journal directory: .*Read-only file system' "$T" tasks run twenty.txt --journal ro/j
  umount ro
else
  echo "note: cannot mount a read-only tmpfs here (not root): journal-read-only not run"
fi

"$T" tasks run twenty.txt --journal jd --progress 0 > /dev/null 2>&1 && ok "a journal of 20 tasks" || bad "first run"
# Flip one byte in the middle record: refused, naming it; nothing written.
cp jd/journal good.journal
$PY - jd/journal <<'PY'
import sys
p = sys.argv[1]
b = bytearray(open(p, 'rb').read())
b[len(b) // 2] ^= 0x55
open(p, 'wb').write(b)
PY
sum=$(sha256sum < jd/journal | cut -d' ' -f1)
hostile damaged 3 'journal jd/journal: record [0-9]* at byte [0-9]* is damaged' "$T" tasks run twenty.txt --journal jd
same_bytes jd/journal "$sum" && ok "the damaged journal was left as it was" || bad "damaged journal changed"
hostile damaged-status 3 'is damaged' "$T" tasks status jd
# A torn last record: cut off with a warning, the rest replayed, the run goes on.
cp good.journal jd/journal
# cut 5 bytes into the second-to-last record (the last is the farm's END; before it a task's FINISH)
$PY - jd/journal <<'PY'
import os, struct, sys
p = sys.argv[1]
b = open(p, 'rb').read()
starts, off = [], 0
while off < len(b):
    starts.append(off)
    off += 12 + struct.unpack_from('<I', b, off)[0]
os.truncate(p, starts[-1] - 5)
PY
"$T" tasks run twenty.txt --journal jd --progress 0 > torn.out 2>&1
rc=$?
[ $rc -eq 0 ] && grep -q 'the last record is incomplete (.* bytes from byte' torn.out && grep -q '19 succeeded' torn.out \
  && ok "a torn last record: warned, cut off, its task run again" || { bad "torn: exit $rc"; cat torn.out; }
# Not a journal.
mkdir jn && head -c 3000 /dev/urandom > jn/journal
hostile not-a-journal 3 'journal jn/journal: ' "$T" tasks run twenty.txt --journal jn
echo 'this is not a journal at all, just text' > jn/journal
hostile text-journal 3 'not a tessera tasks journal' "$T" tasks run twenty.txt --journal jn

# A full disk under the journal: a 64 KiB tmpfs fills after about a thousand records.
if mkdir full && mount -t tmpfs -o size=64k tmpfs full 2>/dev/null; then
  for i in $(seq 3000); do echo "true"; done > many.txt
  hostile disk-full 4 'journal full/j/journal: write failed: No space left on device' \
    "$T" tasks run many.txt --journal full/j --output-dir out --progress 0
  "$T" tasks status full/j > full.out && ok "the full journal still replays: $(head -1 full.out | cut -c1-70)" \
    || { bad "full journal unreadable"; cat full.out; }
  done_before=$(sed -n 's/^[0-9]* tasks: \([0-9]*\) succeeded.*/\1/p' full.out)
  [ "${done_before:-0}" -gt 0 ] && [ "$done_before" -lt 3000 ] && ok "$done_before of 3000 done before the disk filled" \
    || bad "done before: $done_before"
  mount -o remount,size=16m full
  "$T" tasks run many.txt --journal full/j --output-dir out --progress 0 > full2.out 2>&1 \
    && "$T" tasks status full/j | grep -q '^3000 tasks: 3000 succeeded' && ok "with room again, the rest ran" \
    || { bad "after the disk full"; tail -3 full2.out; }
  umount full
else
  echo "note: cannot mount a tmpfs here (not root): disk-full not run"
fi

# Two farms on one journal: the second is refused, naming the first.
echo 'sleep 60' > hold.txt
"$T" tasks run hold.txt --journal jt --keep-alive --drain 0 --kill-grace 1 --progress 0 > first.out 2>&1 &
first=$!
for _ in $(seq 600); do [ -s jt/owner ] && break; sleep 0.1; done
hostile two-farms 2 "journal jt/journal is in use by the farm of $(hostname) pid $first" \
  "$T" tasks run hold.txt --journal jt --progress 0
kill -TERM $first
wait $first
[ $? -eq 75 ] && ok "the first farm, stopped, exits 75" || bad "first farm exit"
robust_finish
