#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# tessera submit --print-script with hostile strings: a config path, --set
# values, a job name, partition, account and log name holding newlines,
# quotes, $(...), backticks, spaces, ';' and '#'. What reaches the shell is
# single-quoted (the script passes bash -n, and run with a recording srun
# executes nothing and hands every string over exactly); what reaches a
# #SBATCH line is double-quoted for sbatch's parser, and what cannot be
# quoted there (a newline, any control byte) is refused with exit 2.
. "$(dirname "$0")/lib.sh"
fixtures
T=$TSR_BIN
# The markers: any of these files appearing means a string was executed.
evil='x $(touch pwned1) `touch pwned2`; touch pwned3 # '"'"'q'"'"' "dq" \ ${HOME}'
pwned() { ls pwned* 2>/dev/null | head -1; }

# A recording srun: writes its arguments NUL-separated to srun.args, then
# runs the tessera command line it was given (its own options dropped).
mkdir -p bin
cat > bin/srun <<'SH'
#!/usr/bin/env bash
printf '%s\0' "$@" > "$SRUN_ARGS"
while [ $# -gt 0 ] && [ "${1#--}" != "$1" ]; do shift; done
exec "$@"
SH
chmod +x bin/srun
export SRUN_ARGS=$PWD/srun.args

# 1. A config whose path holds a newline and every shell metacharacter.
cfg="$PWD/$(printf 'cfg\n%s.ini' "$evil")"
cp small.ini "$cfg"
setv="train.output=out $evil.h5"
"$T" submit "$cfg" --set "$setv" --set runtime.progress=none --print-script >script.sh 2>e.txt \
  && ok "--print-script with a hostile config path and --set value" || { bad "--print-script refused"; cat e.txt; }
bash -n script.sh && ok "the script parses (bash -n)" || { bad "bash -n"; cat script.sh; }
# One source: the script ends with jobs/train.sbatch's run-and-requeue lines, byte for byte.
sed -n '/^# ---- run, then requeue/,$p' "$TSR_SRC/jobs/train.sbatch" >body.txt
[ "$(wc -l <body.txt)" -gt 20 ] && tail -n "$(wc -l <body.txt)" script.sh | cmp -s - body.txt \
  && ok "the script ends with jobs/train.sbatch's run-and-requeue lines" || { bad "body differs"; diff body.txt script.sh; }
[ -z "$(pwned)" ] && ok "printing executed nothing" || bad "executed: $(pwned)"
grep -q "^# Written by tessera submit from .*cfg\\\\nx " script.sh \
  && ok "the comment shows the newline escaped" || { bad "comment line"; head -15 script.sh; }
PATH=$PWD/bin:$PATH SLURM_RESTART_COUNT=0 timeout 120 bash script.sh >run.txt 2>&1
rc=$?
[ $rc -eq 0 ] && [ -z "$(pwned)" ] && ok "the script ran (exit 0) and executed no string" \
  || { bad "script run: exit $rc, pwned '$(pwned)'"; tail -5 run.txt; }
$PY - "$SRUN_ARGS" "$T" "$cfg" "$setv" <<'PY' && ok "srun got the path and the value exactly" || bad "srun arguments differ"
import sys
args = open(sys.argv[1], "rb").read().split(b"\0")[:-1]
want = [b"--mpi=pmix", b"--kill-on-bad-exit=1", sys.argv[2].encode(), b"train", sys.argv[3].encode(),
        b"--set", sys.argv[4].encode(), b"--set", b"runtime.progress=none"]
if args != want: print(args, file=sys.stderr)
sys.exit(0 if args == want else 1)
PY
[ -f "out $evil.h5" ] && ok "the job trained with that config into that output" || { bad "no model"; ls; }
rm -f "out $evil.h5"
PATH=$PWD/bin:$PATH SLURM_RESTART_COUNT=2 timeout 120 bash script.sh >run.txt 2>&1
tr '\0' '\n' < "$SRUN_ARGS" | tail -2 | paste -sd' ' | grep -qx -- "--resume auto" \
  && ok "a requeued run (SLURM_RESTART_COUNT > 0) adds --resume auto" || { bad "requeued run"; tr '\0' ' ' < "$SRUN_ARGS"; }
[ -z "$(pwned)" ] || bad "the requeued run executed $(pwned)"

# 2. #SBATCH values: quoted so that sbatch reads back exactly the string
# (checked with sbatch's rules: \ escapes, "..." and '...' group, an
# unquoted # ends the line), never executed by bash (comments to it).
name='job "n" $(touch pwned4) `touch pwned5`; #x '"'q'"' \y'
"$T" submit small.ini --job-name "$name" --partition "p \$(touch pwned6)" --account "acct;\`touch pwned7\`" \
  --set "submit.output=log #%j \$(touch pwned8).out" --print-script >script2.sh 2>e.txt \
  && ok "--print-script with hostile directive values" || { bad "refused"; cat e.txt; }
$PY - script2.sh "$name" <<'PY' && ok "#SBATCH lines read back (sbatch's rules) to the exact strings" || bad "#SBATCH round trip"
import sys
def sbatch_arg(line):                      # src/sbatch/opt.c _get_argument, one argument
    out, q, esc, i = [], None, False, 0
    while i < len(line) and (q or not line[i].isspace()):
        c = line[i]; i += 1
        if esc: esc = False
        elif c == "\\": esc = True; continue
        elif q:
            if c == q: q = None; continue
        elif c in "\"'": q = c; continue
        elif c == "#": break
        out.append(c)
    assert q is None, "unmatched quote in " + line
    return "".join(out)
got = {}
for l in open(sys.argv[1]):
    if l.startswith("#SBATCH "):
        k, _, v = sbatch_arg(l[8:].rstrip("\n")).partition("=")
        got[k] = v
want = {"--job-name": sys.argv[2], "--partition": "p $(touch pwned6)", "--account": "acct;`touch pwned7`",
        "--output": "log #%j $(touch pwned8).out"}
bad = {k: (got.get(k), v) for k, v in want.items() if got.get(k) != v}
if bad: print(bad, file=sys.stderr)
sys.exit(1 if bad else 0)
PY
bash -n script2.sh && PATH=$PWD/bin:$PATH timeout 120 bash script2.sh >run2.txt 2>&1 && [ -z "$(pwned)" ] \
  && ok "running it executes none of them" || { bad "script2: pwned '$(pwned)'"; tail -3 run2.txt; }

# 3. What a #SBATCH line cannot hold: refused, naming where it came from.
nl=$(printf 'a\nb')
hostile "--job-name with a newline" 2 "submit: --job-name = 'a\\\\nb' holds a control character" \
  "$T" submit small.ini --job-name "$nl" --print-script
hostile "--partition with a newline and a command" 2 "submit: --partition = .* holds a control character" \
  "$T" submit small.ini --partition "$(printf 'p\ntouch pwned9')" --print-script
hostile "--account with a carriage return" 2 "submit: --account = 'a\\\\rb' holds a control character" \
  "$T" submit small.ini --account "$(printf 'a\rb')" --print-script
hostile "[submit] output with a newline (--set)" 2 "submit: \[submit\] output (--set submit.output=.*) = .* holds a control" \
  "$T" submit small.ini --set "submit.output=$(printf 'log\n#SBATCH --uid=0')" --print-script
hostile "[submit] job_name with an escape (--set)" 2 "submit: \[submit\] job_name (--set .*) = 'x\\\\x1B\[2J' holds" \
  "$T" submit small.ini --set "submit.job_name=$(printf 'x\033[2J')" --print-script
hostile "[submit] partition with a tab" 2 "submit: \[submit\] partition (--set .*) = 'a\\\\tb' holds" \
  "$T" submit small.ini --set "submit.partition=$(printf 'a\tb')" --print-script
hostile "--time beyond what a long holds" 2 "submit: time '99999999999999999999' (--time): expected MM" \
  "$T" submit small.ini --time 99999999999999999999 --print-script
hostile "--time of more than INT_MAX minutes" 2 "submit: time '2000000-00:00:00' (--time): expected" \
  "$T" submit small.ini --time 2000000-00:00:00 --print-script
hostile "--time UNLIMITEDX" 2 "submit: time 'UNLIMITEDX' (--time): expected MM.*or UNLIMITED" \
  "$T" submit small.ini --time UNLIMITEDX --print-script
"$T" submit small.ini --time unlimited --print-script >su.sh 2>e.txt && grep -q '^#SBATCH --time=UNLIMITED$' su.sh \
  && ok "--time unlimited: #SBATCH --time=UNLIMITED" || { bad "--time unlimited"; cat e.txt; grep time su.sh; }
mkdir "$(printf 'wd\nx')"
pushd "$(printf 'wd\nx')" >/dev/null
hostile "a working directory with a newline (--chdir)" 2 \
  "submit: the working directory = '.*wd\\\\nx' holds a control character" "$T" submit ../small.ini --print-script
popd >/dev/null
# The default job name comes from the config's name: made safe, not refused.
"$T" submit "$cfg" --print-script >script3.sh 2>e.txt && grep -q '^#SBATCH --job-name="tessera-cfg_x ' script3.sh \
  && ok "a default job name from a config name with a newline is made safe" || { bad "default job name"; cat e.txt; }
[ -z "$(pwned)" ] && ok "no marker file anywhere" || bad "executed: $(pwned)"
robust_finish
