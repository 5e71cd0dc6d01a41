#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# README command two (and .ci/run): install what is missing, build, run every test with ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
./scripts/build.sh
. scripts/env.sh
ctest --test-dir build --output-on-failure -j2 "$@"
