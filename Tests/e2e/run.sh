#!/usr/bin/env bash
# The pod end-to-end tests (make e2e): needs root (namespaces, chroot,
# mounts) and `make image`. Installs busybox-static and umoci if missing,
# then runs Tests/e2e with its own harness (started and stopped by
# Tests/run-integration.sh in .deps/harness-e2e, so it never collides with
# the integration run's). Usage: Tests/e2e/run.sh [pytest args...]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
[[ $(id -u) == 0 ]] || { echo "e2e: run as root (unshare, chroot, mount)" >&2; exit 1; }
"$root/scripts/install-deps.sh" e2e
export HARNESS_STATE="$root/.deps/harness-e2e" BAOWRAP_IMAGE="$root/dist/baowrap-init.oci.tar"
exec "$root/Tests/run-integration.sh" -v -s "$root/Tests/e2e" "$@"
