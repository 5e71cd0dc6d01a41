#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# A task farm's coordinator driven by real HTTP clients (curl, Python,
# tessera tasks submit/cancel/status) while 2 ranks run: GET /tasks with
# filters and paging, GET /tasks/{id} with the end of its output, POST
# /tasks adding work (and what depends on running work), cancel by id and
# by tag (a running task killed, its dependents skipped), /metrics through
# promtool, the bearer token, the journal keeping submissions.
. "$(dirname "$0")/lib.sh"

json() { $PY -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

cat > farm.txt <<'EOF'
{"id": "long", "cmd": "sleep 60", "tags": ["slow"]}
{"id": "long2", "cmd": "sleep 60", "tags": ["slow"]}
{"id": "after-long", "cmd": "echo never", "after": "long"}
{"id": "w{i}", "cmd": "echo out-{i}; echo err-{i} >&2", "tags": ["quick"], "each": {"i": "1..30"}, "priority": 1}
{"id": "pid", "cmd": "echo $PPID > rank.pid", "priority": 1}
EOF
mpi 2 tasks run farm.txt --journal jf --serve --keep-alive --progress 0 > farm.out 2>&1 &
job=$!
for _ in $(seq 600); do [ -s coordinator.addr ] && break; sleep 0.1; done
A=$(head -1 coordinator.addr)
[ -n "$A" ] && ok "coordinator up at $A" || { bad "no coordinator.addr"; cat farm.out; kill $job; finish; exit 1; }
for _ in $(seq 300); do
  n=$(curl -s "$A/tasks?limit=0" | json 'd["counts"]["succeeded"] + d["counts"]["running"]' 2>/dev/null)
  [ "${n:-0}" -ge 33 ] && break; sleep 0.1
done
curl -s "$A/tasks?limit=0" > c.json
[ "$(json 'd["total"], d["counts"]["succeeded"], d["counts"]["running"], d["counts"]["pending"], d["state"]' < c.json)" \
  = "34 31 2 1 running" ] && ok "GET /tasks: counts while two tasks run" || { bad "counts"; cat c.json; }
curl -s "$A/tasks?tag=quick&limit=7&offset=5" > page.json
[ "$(json 'len(d["tasks"]), d["tasks"][0]["id"], d["next_offset"]' < page.json)" = "7 w6 12" ] \
  && ok "GET /tasks?tag=quick&limit=7&offset=5: a page of 7 from w6, next_offset 12" || { bad "paging"; cat page.json; }
curl -s "$A/tasks?state=running" | json '[t["id"] for t in d["tasks"]]' > run.txt
[ "$(cat run.txt)" = "['long', 'long2']" ] && ok "GET /tasks?state=running" || bad "running: $(cat run.txt)"
curl -s "$A/tasks/w3" > w3.json
[ "$(json 'd["state"], d["exit_code"], d["stdout_tail"], d["stderr_tail"], d["attempts"]' < w3.json)" \
  = "succeeded 0 out-3 err-3 1" ] && ok "GET /tasks/w3: state, exit code, the ends of its output" \
  || { bad "detail"; cat w3.json; }
[ "$(json 'd["host"] is not None and d["where"].startswith("cpus ")' < w3.json)" = True ] \
  && ok "GET /tasks/w3: host and placement" || { bad "placement"; cat w3.json; }

# Cancel: one by id (its dependent skipped), then by tag.
"$TSR_BIN" tasks cancel "$A" long > can.out && grep -q 'cancelled 1 task' can.out && ok "tessera tasks cancel long" \
  || { bad "cancel"; cat can.out; }
for _ in $(seq 100); do [ "$(curl -s "$A/tasks/after-long" | json 'd["state"]')" = skipped ] && break; sleep 0.1; done
[ "$(curl -s "$A/tasks/long" | json 'd["state"], d["ended_by"]')" = "cancelled cancelled" ] \
  && [ "$(curl -s "$A/tasks/after-long" | json 'd["reason"]')" = "dependency long cancelled" ] \
  && ok "the running task was killed, its dependent skipped with the reason" || bad "cancel states"
# Submissions (a core is free again): plain lines get ids s1.<line>; one waits for running work.
printf 'echo dyn {1..3}\n{"id": "d-after", "cmd": "echo dep", "after": "long2"}\n' > more.txt
"$TSR_BIN" tasks submit "$A" more.txt > sub.out && grep -q 'submitted 4 tasks (the farm has 38)' sub.out \
  && ok "tessera tasks submit: 4 tasks" || { bad "submit"; cat sub.out; }
for _ in $(seq 100); do [ "$(curl -s "$A/tasks/s1.1.3" | json 'd["state"]')" = succeeded ] && break; sleep 0.1; done
[ "$(curl -s "$A/tasks/s1.1.3" | json 'd["stdout_tail"]')" = "dyn 3" ] && ok "a submitted sweep ran (s1.1.3)" \
  || bad "s1.1.3: $(curl -s "$A/tasks/s1.1.3")"
code=$(curl -s -o bad.json -w '%{http_code}' -H 'Content-Type: text/plain' --data-binary '{"id": "x", "cmd": "y", "after": "ghost"}' "$A/tasks")
[ "$code" = 422 ] && grep -q "unknown task 'ghost'" bad.json && ok "POST /tasks with an unknown dependency: 422, named" \
  || { bad "422: $code"; cat bad.json; }

curl -s -X POST "$A/tasks/cancel?tag=slow" | json 'd["cancelled"]' > tag.txt
[ "$(cat tag.txt)" = 1 ] && ok "POST /tasks/cancel?tag=slow cancels the other" || bad "tag cancel: $(cat tag.txt)"
"$TSR_BIN" tasks status "$A" --state skipped --list > st.out
grep -q '^after-long	skipped' st.out && grep -q '^d-after	skipped' st.out \
  && ok "tessera tasks status URL --state skipped --list" || { bad "status list"; cat st.out; }

# The dashboard shows the farm (headless Chromium runs its script).
BROWSER=$(command -v chromium || command -v chromium-browser || true)
if [ -n "$BROWSER" ]; then
  timeout 90 "$BROWSER" --headless --no-sandbox --disable-gpu --no-first-run --user-data-dir="$WORK/profile" \
    --virtual-time-budget=5000 --dump-dom "http://$A/" > dom.html 2> chromium.err
  grep -q 'data-tasks="38"' dom.html && grep -q '<td>cancelled</td><td>2</td>' dom.html \
    && ok "the dashboard shows the farm: 38 tasks, its counts and ranks" || { bad "dashboard"; grep -o 'data-tasks="[0-9]*"\|<td>cancelled</td><td>[0-9]*' dom.html; }
fi

curl -s "$A/metrics" > m.txt
if command -v promtool >/dev/null; then
  promtool check metrics < m.txt >/dev/null 2>pt.err && ok "/metrics passes promtool" || { bad "promtool"; cat pt.err; }
fi
grep -q 'tessera_tasks{state="cancelled"} 2' m.txt && grep -q 'tessera_tasks_rank_busy_ratio{rank="1"}' m.txt \
  && grep -q 'tessera_tasks_journal_fsyncs_total' m.txt && ok "task metrics: states, busy ratio, journal" \
  || { bad "metrics"; grep tasks m.txt; }
[ "$(curl -s -o /dev/null -w '%{http_code}' "$A/tasks/nope")" = 404 ] && \
  [ "$(curl -s -o /dev/null -w '%{http_code}' -X DELETE "$A/tasks")" = 405 ] && \
  [ "$(curl -s -o /dev/null -w '%{http_code}' "$A/tasks?state=bogus")" = 400 ] && ok "404, 405, 400 on tasks routes" \
  || bad "error codes"

kill -TERM "$(cat rank.pid)"
wait $job
grep -q 'signal 15' farm.out && ok "SIGTERM stops the kept-alive farm" || { bad "stop"; tail farm.out; }
"$TSR_BIN" tasks status jf > jst.out
grep -q '^38 tasks: 34 succeeded, 0 failed, 2 skipped, 2 cancelled' jst.out \
  && ok "the journal holds the submissions and cancels: $(head -1 jst.out | cut -c1-60)" || { bad "journal"; cat jst.out; }

# (each rank has one core here: the quick tasks, at priority 1, ran before the long ones took both)
# The token: another address needs one; then requests without it get 401.
echo 'sleep 30' > one.txt
mpi 1 tasks run one.txt --bind 0.0.0.0 --progress 0 > notoken.out 2>&1
[ $? -eq 2 ] && grep -q 'set serve.token_file' notoken.out && ok "binding 0.0.0.0 without a token: exit 2" \
  || { bad "no token"; cat notoken.out; }
head -c 24 /dev/urandom | base64 | tr -d '/+=' > tok && chmod 600 tok && mkdir rd
mpi 1 tasks run one.txt --token-file tok --run-dir rd --progress 0 > tok.out 2>&1 &
job=$!
for _ in $(seq 600); do [ -s rd/coordinator.addr ] && break; sleep 0.1; done
[ "$(curl -s -o /dev/null -w '%{http_code}' "$(head -1 rd/coordinator.addr)/tasks")" = 401 ] \
  && "$TSR_BIN" tasks status rd --token-file tok | grep -q '^1 tasks' && ok "401 without the token, 200 with it" \
  || bad "token"
"$TSR_BIN" tasks cancel rd 1 --token-file tok > /dev/null
wait $job
[ $? -eq 7 ] && ok "the cancelled task ends the farm with exit 7" || bad "exit after cancel"
finish
