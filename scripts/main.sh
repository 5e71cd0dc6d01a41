#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# README command one: install what is missing, build, train on the bundled digits.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
./scripts/build.sh
. scripts/env.sh
mpirun -n 2 build/tessera train examples/digits.ini "$@"
