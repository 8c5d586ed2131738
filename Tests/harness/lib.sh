# shellcheck shell=bash disable=SC2034  # variables are for the scripts that source this
# Shared by the harness scripts (sourced, not run). Paths are resolved from
# this file's location so the scripts work from any working directory.
HARNESS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$HARNESS_DIR/../.." && pwd)
VENV="$REPO_ROOT/.deps/venv"
PY="$VENV/bin/python"
# Marks a directory as harness state, so start.sh only ever wipes its own.
STATE_MARKER=.baowrap-harness

die() { echo "harness: $*" >&2; exit 1; }

# Sets STATE to the absolute state directory (argument or the default).
# The env file promises unquoted KEY=VALUE lines, so paths with characters
# that would need quoting are refused up front.
resolve_state_dir() {
    local dir=${1:-$REPO_ROOT/.deps/harness}
    [[ $dir = /* ]] || dir="$PWD/$dir"
    STATE=$(realpath -m -- "$dir")
    [[ $STATE =~ ^[A-Za-z0-9_./+-]+$ ]] || die "state dir '$STATE' needs quoting; pick a plainer path"
    [[ $REPO_ROOT =~ ^[A-Za-z0-9_./+-]+$ ]] || die "repo path '$REPO_ROOT' needs quoting"
}

# True while group PGID has a live process, or with `any` also a zombie.
group_alive() {
    local pgid=$1 zombies_count=${2:-} stat rest state pgrp
    for stat in /proc/[0-9]*/stat; do
        { read -r rest <"$stat"; } 2>/dev/null || continue
        rest=${rest##*) }
        read -r state _ pgrp _ <<<"$rest"
        [[ $pgrp = "$pgid" ]] && [[ $state != Z || $zombies_count = any ]] && return 0
    done
    return 1
}

# Makes STATE a fresh, empty state dir: stops a harness still running there
# (STOP_SCRIPT), refuses to wipe a directory this harness did not make, and
# from then on stops whatever was started if the calling script fails.
fresh_state_dir() { # STOP_SCRIPT
    STOP_SCRIPT=$1
    if compgen -G "$STATE/pids/*.pid" >/dev/null; then
        echo "harness: already running in $STATE; stopping it first" >&2
        "$STOP_SCRIPT" "$STATE"
    fi
    if [[ -d $STATE ]] && [[ -n $(ls -A "$STATE") ]] && [[ ! -e $STATE/$STATE_MARKER ]]; then
        die "$STATE is not empty and was not made by this harness; refusing to wipe it"
    fi
    rm -rf "$STATE"
    mkdir -p "$STATE/pids" "$STATE/logs"
    touch "$STATE/$STATE_MARKER"
    trap stop_on_failure EXIT
}

stop_on_failure() {
    local rc=$?
    if ((rc)); then
        echo "harness: start failed; stopping what was started (logs in $STATE/logs)" >&2
        "$STOP_SCRIPT" "$STATE"
    fi
}

# Prints N free loopback ports, all held open together so none is handed
# out twice.
free_ports() { # N
    "$PY" - "$1" <<'PYEOF'
import socket, sys
socks = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))
PYEOF
}
