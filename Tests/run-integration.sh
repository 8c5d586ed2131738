#!/usr/bin/env bash
# Runs the black-box integration tests: installs the harness's packages and
# venv if missing, starts the harness in a fresh state dir, runs pytest
# against dist/baowrap, and stops the harness whatever happens.
# Usage: Tests/run-integration.sh [pytest args...]; HARNESS_STATE picks the
# harness's state dir (default .deps/harness-test).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$root/scripts/install-deps.sh" harness bench
"$root/Tests/harness/setup.sh"
state=${HARNESS_STATE:-$root/.deps/harness-test}
trap '"$root/Tests/harness/stop.sh" "$state" >/dev/null 2>&1 || true' EXIT
"$root/Tests/harness/start.sh" "$state" >/dev/null
export HARNESS_ENV="$state/env" BAOWRAP_BIN="$root/dist/baowrap" BAOWRAPCTL_BIN="$root/dist/baowrapctl"
cd "$root"
"$root/.deps/venv/bin/python" -m pytest -q -p no:cacheprovider "${@:-Tests/integration}"
