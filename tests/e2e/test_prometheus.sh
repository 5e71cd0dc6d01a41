#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# examples/prometheus: the alert rules and the scrape configuration pass
# promtool's checks, and the rules' own tests (a slow rank, a stalled job,
# falling throughput, high memory on series shaped like tessera's) pass.
. "$(dirname "$0")/lib.sh"
if ! command -v promtool >/dev/null; then
  echo "promtool is not installed (scripts/install-deps.sh installs prometheus)"
  exit 1
fi
P="$TSR_SRC/examples/prometheus"
cp "$P"/*.yml .
promtool check rules tessera-rules.yml >rules.out 2>&1 && grep -q 'SUCCESS: 5 rules found' rules.out \
  && ok "promtool check rules: 5 rules" || { cat rules.out; bad "check rules"; }
promtool check config prometheus.yml >config.out 2>&1 && ok "promtool check config" || { cat config.out; bad "check config"; }
promtool test rules tessera-rules.test.yml >test.out 2>&1 && ok "promtool test rules: the alerts fire as expected" \
  || { cat test.out; bad "test rules"; }
# The test can fail: a rule that names the wrong rank is caught.
sed 's/rank: "1"/rank: "0"/' tessera-rules.test.yml >wrong.test.yml
promtool test rules wrong.test.yml >wrong.out 2>&1 && bad "a wrong expectation passed" \
  || ok "a test expecting the wrong rank fails"
finish
