#!/usr/bin/env bash
# Runs the HA lane tests (Tests/ha) against dist/baowrap: installs haproxy and
# nginx's stream module if missing, and the venv, starts the lane
# (Tests/harness/ha) in a fresh state dir, runs pytest, prints the load
# waves' figures, and stops the lane whatever happens.
# Usage: Tests/run-ha.sh [pytest args...]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$root/scripts/install-deps.sh" harness ha
"$root/Tests/harness/setup.sh"
state="$root/.deps/ha-test"
trap '"$root/Tests/harness/ha/stop.sh" "$state" >/dev/null 2>&1 || true' EXIT
"$root/Tests/harness/ha/start.sh" "$state"
export HA_ENV="$state/env" BAOWRAP_BIN="$root/dist/baowrap" HA_LOAD_REPORT="$state/load-report.jsonl"
rm -f "$HA_LOAD_REPORT"
cd "$root"
"$root/.deps/venv/bin/python" -m pytest -q -p no:cacheprovider "${@:-Tests/ha}"
if [[ -s $HA_LOAD_REPORT ]]; then
    "$root/.deps/venv/bin/python" "$root/Tests/ha/report.py" "$HA_LOAD_REPORT"
fi
