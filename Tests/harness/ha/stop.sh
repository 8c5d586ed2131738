#!/usr/bin/env bash
# Stop the HA lane started by start.sh for STATE_DIR (default .deps/ha):
# the dev harness's stop.sh, which signals exactly the process groups
# recorded in STATE_DIR/pids (the nodes, transit, nginx, haproxy).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
resolve_state_dir "${1:-$HA_DEFAULT_STATE}"
exec "$HARNESS_DIR/stop.sh" "$STATE"
