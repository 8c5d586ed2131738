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
