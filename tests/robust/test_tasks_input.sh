#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Hostile task files, options and HTTP requests for tessera tasks: each
# refused with its exit code and one error line naming the file, line and
# task; the task file left as it was; a farm under attack keeps running.
. "$(dirname "$0")/lib.sh"
T=$TSR_BIN

# refuse NAME PATTERN CONTENT: a task file with CONTENT (printf format) is refused with exit 3.
refuse() {
  local name=$1 pat=$2
  printf "$3" > "$name.txt"
  local sum
  sum=$(sha256sum < "$name.txt" | cut -d' ' -f1)
  hostile "$name" 3 "$pat" "$T" tasks run "$name.txt" --progress 0
  same_bytes "$name.txt" "$sum" || bad "$name: the task file was changed"
}

refuse malformed 'malformed.txt:2: not valid JSON at column' 'echo a\n{"cmd": "x",,}\n'
refuse unknown-key 'unknown key "priorty" (did you mean "priority"?)' '{"cmd": "x", "priorty": 3}\n'
refuse duplicate-id "duplicate.*:3: duplicate task id 'a' (first defined on line 1)" \
  '{"id": "a", "cmd": "x"}\n{"id": "b", "cmd": "x"}\n{"id": "a", "cmd": "y"}\n'
refuse default-id-clash "duplicate task id '1'" 'echo one\n{"id": "1", "cmd": "x"}\n'
refuse unknown-dep "task 'b' waits for unknown task 'ghost'" '{"id": "b", "cmd": "x", "after": ["ghost"]}\n'
refuse cycle 'dependency cycle: a -> b -> c -> a' \
  '{"id": "a", "cmd": "x", "after": "b"}\n{"id": "b", "cmd": "x", "after": "c"}\n{"id": "c", "cmd": "x", "after": "a"}\n'
refuse self-dep 'dependency cycle: s -> s' '{"id": "s", "cmd": "x", "after": "s"}\n'
refuse prefix-nothing "waits for 'zz\\*', which matches no task" '{"id": "a", "cmd": "x", "after": "zz*"}\n'
refuse cores 'task .big. asks for 4096 cores; the largest rank has' '{"id": "big", "cmd": "x", "cores": 4096}\n'
refuse gpus 'task .g. asks for 3 GPUs; the rank with most has 0' '{"id": "g", "cmd": "x", "gpus": 3}\n'
refuse bad-id "task id 'a b' is not valid" '{"id": "a b", "cmd": "x"}\n'
refuse dotdot-id "task id '../x' is not valid" '{"id": "../x", "cmd": "x"}\n'
refuse nul-byte 'a NUL byte at byte 7' 'echo a\000b\n'
refuse control 'a control character or invalid UTF-8 at byte 6' 'echo \033[31m red\n'
refuse utf8 'invalid UTF-8' 'echo caf\303\n'
refuse no-cmd 'the task has no "cmd"' '{"id": "x"}\n'
refuse empty-cmd '"cmd" must be a non-empty string' '{"cmd": ""}\n'
refuse types '"retries" must be an integer from 0 to 1000' '{"cmd": "x", "retries": "3"}\n'
refuse negative-timeout '"timeout" must be seconds >= 0' '{"cmd": "x", "timeout": -5}\n'
refuse bad-range '"each"."i": .1..x. is not a range' '{"cmd": "x {i}", "each": {"i": "1..x"}}\n'
refuse empty-each '"each"."i" must be a range' '{"cmd": "x {i}", "each": {"i": []}}\n'
refuse bad-env 'is not a variable name' '{"cmd": "x", "env": {"A-B": "1"}}\n'
refuse dup-key 'duplicate object key' '{"cmd": "x", "cmd": "y"}\n'
refuse huge-sweep 'expand to more than 100000000 tasks' 'echo {1..20000}{1..20000}\n'
refuse two-objects 'not valid JSON at column 14: end of file expected' '{"cmd": "x"} {"cmd": "y"}\n'
head -c 1100000 /dev/zero | tr '\0' 'x' | sed 's/^/echo /' > long.txt
hostile overlong 3 'long.txt:1: the line is 1100005 bytes long; at most 1048576' "$T" tasks run long.txt --progress 0
hostile missing-file 3 'task file nope.txt: No such file or directory' "$T" tasks run nope.txt
mkdir adir
hostile directory 3 'task file adir: not a regular file' "$T" tasks run adir
mkfifo fifo
hostile fifo 3 'task file fifo: not a regular file' "$T" tasks run fifo
hostile dev-zero 3 'task file /dev/zero: not a regular file' "$T" tasks run /dev/zero

# Output files that are FIFOs (no reader: a plain open would block the rank) or directories.
mkfifo out.fifo && mkdir out.dir
printf '{"id": "f", "cmd": "echo x", "stdout": "%s/out.fifo"}\n{"id": "d", "cmd": "echo x", "stderr": "%s/out.dir"}\n{"id": "n", "cmd": "echo x", "stdout": "/dev/null"}\n' "$PWD" "$PWD" > outs.txt
CASES=$((CASES + 1))
timeout 60 "$T" tasks run outs.txt --journal jo --progress 0 > outs.out 2>&1
rc=$?
"$T" tasks status jo --list > outs.st
[ $rc -eq 7 ] && grep -q '^f	failed	1	126' outs.st && grep -q '^d	failed	1	126' outs.st && grep -q '^n	succeeded' outs.st \
  && grep -q 'the output file .*out.fifo is a FIFO or socket' outs.out \
  && ok "a FIFO or directory as output: the task fails (126, reason in the summary), the farm goes on; /dev/null works" \
  || { bad "output files: exit $rc"; cat outs.out outs.st; }

# Options.
echo 'true' > ok.txt
hostile no-taskfile 2 'tasks run: expected a task file' "$T" tasks run
hostile unknown-option 2 "unknown option '--frobnicate'" "$T" tasks run ok.txt --frobnicate
hostile bad-drain 2 'tasks run: --drain -1: expected a number from 0' "$T" tasks run ok.txt --drain -1
hostile bad-gpus 2 'tasks run: --gpus-per-rank x: expected a number' "$T" tasks run ok.txt --gpus-per-rank x
hostile unknown-sub 2 "tasks: unknown command 'frob'" "$T" tasks frob
hostile bad-url 2 'expected http://HOST:PORT' "$T" tasks status nowhere
hostile bad-state 2 '--state bogus: expected pending' "$T" tasks status "$(mkdir -p jj && "$T" tasks run ok.txt --journal jj >/dev/null 2>&1; echo jj)" --state bogus
# Two ranks: one error line, from rank 0.
hostile cycle-2-ranks 3 'dependency cycle: a -> b -> c -> a' \
  "$TSR_MPIEXEC" --oversubscribe --bind-to none -n 2 "$T" tasks run cycle.txt --progress 0

# The coordinator: hostile requests against a running farm.
echo '{"id": "hold", "cmd": "sleep 120"}' > hold.txt
"$T" tasks run hold.txt --serve --keep-alive --progress 0 > farm.out 2>&1 &
farm=$!
for _ in $(seq 600); do [ -s coordinator.addr ] && break; sleep 0.1; done
A=$(head -1 coordinator.addr)
req() { # CODE PATTERN CURL-ARGS...: status CODE and an error naming PATTERN
  local code=$1 pat=$2 got; shift 2
  CASES=$((CASES + 1))
  got=$(curl -s -o r.json -w '%{http_code}' "$@")
  if [ "$got" = "$code" ] && grep -q -- "$pat" r.json; then ok "HTTP $code: $(head -c 120 r.json)"; else bad "expected $code '$pat', got $got: $(head -c 300 r.json)"; fi
}
P=(-H 'Content-Type: text/plain' --data-binary)
req 400 'not valid JSON' "${P[@]}" '{"cmd": ' "$A/tasks"
req 422 'unknown key' "${P[@]}" '{"cmd": "x", "colour": 1}' "$A/tasks"
req 422 "duplicate task id 'hold': the farm already has it" "${P[@]}" '{"id": "hold", "cmd": "x"}' "$A/tasks"
req 422 'dependency cycle: p -> q -> p' "${P[@]}" $'{"id": "p", "cmd": "x", "after": "q"}\n{"id": "q", "cmd": "x", "after": "p"}' "$A/tasks"
req 422 'asks for 999 cores' "${P[@]}" '{"id": "fat", "cmd": "x", "cores": 999}' "$A/tasks"
req 400 'empty body' "${P[@]}" '' "$A/tasks"
req 415 'Content-Type image/png' -H 'Content-Type: image/png' --data-binary 'x' "$A/tasks"
head -c 2000000 /dev/zero | tr '\0' 'x' > big.body
req 413 'larger than the limit' -H 'Content-Type: text/plain' --data-binary @big.body "$A/tasks"
req 404 'no task' -X POST "$A/tasks/ghost/cancel"
req 400 'invalid' "$A/tasks/..%2F..%2Fetc"
req 400 'cancel needs ?tag=' -X POST "$A/tasks/cancel"
req 405 'not allowed' "$A/tasks/hold/cancel"
req 400 'whole numbers' "$A/tasks?limit=-3"
req 400 'state: expected' "$A/tasks?state=zombie"
req 404 'no route' "$A/tasks/hold/frob"
[ "$(curl -s "$A/tasks/hold" | $PY -c 'import json,sys; print(json.load(sys.stdin)["state"])')" = running ] \
  && ok "the farm still runs its task after the attacks" || bad "farm state"
grep -q "s1\." farm.out && bad "a refused submission was numbered" || ok "refused submissions leave no trace"
kill -TERM $farm
wait $farm
robust_finish
