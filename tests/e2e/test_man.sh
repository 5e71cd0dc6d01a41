#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# man/tessera.1 and the program agree: every command in `tessera --help` has
# a section in the man page and every section a command; each command's
# options in `tessera CMD --help` are those its section describes; the exit
# codes are the same; the page renders without a groff warning.
. "$(dirname "$0")/lib.sh"
MAN=$TSR_SRC/man/tessera.1
if command -v groff >/dev/null; then
  w=$(groff -man -Tutf8 -ww -z "$MAN" 2>&1)
  [ -z "$w" ] && ok "man page renders without warnings" || { bad "groff warnings"; echo "$w"; }
fi
"$TSR_BIN" --help >help.txt 2>&1 || bad "tessera --help failed"
for c in $(sed -n '/^Commands:/,/^[^ ]/p' help.txt | sed -n 's/^  \([a-z]*\) .*/\1/p'); do
  "$TSR_BIN" "$c" --help >"help-$c.txt" 2>&1 || true
done
$PY - "$MAN" <<'PY'
import glob, re, sys
man = open(sys.argv[1]).read().replace("\\-", "-")
fails = []
def check(cond, what):
    print(("ok: " if cond else "FAIL: ") + what)
    if not cond:
        fails.append(what)
cmds = [p[5:-4] for p in glob.glob("help-*.txt")]
body = man[man.index(".SH COMMANDS"):]
body = body[:body.index("\n.SH ", 1)]
sections = dict(re.findall(r"^\.SS (\w+)\n(.*?)(?=^\.SS |\Z)", body, re.S | re.M))
check(set(cmds) == set(sections), "commands: --help %s, man page %s" % (sorted(cmds), sorted(sections)))
opt = re.compile(r"(?<![\w-])(--[a-z][a-z-]*|-o)(?![\w-])")
for c in sorted(set(cmds) & set(sections)):
    h = set(opt.findall(open("help-%s.txt" % c).read()))
    m = set(opt.findall(sections[c]))
    check(h == m, "%s: options agree%s" % (c, "" if h == m else
          " (only in --help: %s; only in the man page: %s)" % (sorted(h - m), sorted(m - h))))
main = open("help.txt").read()
codes_help = set(re.findall(r"(?<![\w.])(\d+) [a-zA-Z]", main[main.index("Exit codes:"):]))
status = man[man.index(".SH EXIT STATUS"):]
status = status[:status.index("\n.SH ", 1)]
codes_man = set(re.findall(r"^\.B (\d+)$", status, re.M))
check(codes_help == codes_man, "exit codes: --help %s, man page %s" % (sorted(codes_help, key=int), sorted(codes_man, key=int)))
sys.exit(1 if fails else 0)
PY
[ $? -eq 0 ] && ok "man page matches the program" || bad "man page and --help differ"
finish
