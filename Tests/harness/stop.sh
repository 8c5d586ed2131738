#!/usr/bin/env bash
# Stop the harness started by start.sh for STATE_DIR (default .deps/harness).
# Only the process groups recorded in STATE_DIR/pids are signalled: each
# component was started with setsid, so its group holds exactly what it
# spawned (nginx workers included) and nothing else.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
resolve_state_dir "${1:-}"

[[ -d $STATE/pids ]] || exit 0

# A pid file can outlive its process and the pid be reused; only signal a
# group leader whose command line still names this state dir.
is_ours() {
    local pid=$1 rest pgrp
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    { read -r rest <"/proc/$pid/stat"; } 2>/dev/null || return 1
    rest=${rest##*) }
    read -r _ _ pgrp _ <<<"$rest"
    [[ $pgrp = "$pid" ]] || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$STATE/"
}

groups=()
stopped=()
for pidfile in "$STATE"/pids/*.pid; do
    [[ -e $pidfile ]] || continue
    pid=$(<"$pidfile")
    if is_ours "$pid"; then
        kill -TERM -- "-$pid" 2>/dev/null || true
        groups+=("$pid")
        stopped+=("$pid")
    fi
done

# Leaves in `groups` those still alive after up to $1 seconds ($2: see group_alive).
wait_groups() {
    local polls=$(($1 * 20)) pgid alive
    while ((${#groups[@]})) && ((polls-- > 0)); do
        alive=()
        for pgid in "${groups[@]}"; do
            group_alive "$pgid" "${2:-}" && alive+=("$pgid")
        done
        groups=("${alive[@]+"${alive[@]}"}")
        if ((${#groups[@]})); then sleep 0.05; fi
    done
}

wait_groups 5
if ((${#groups[@]})); then
    echo "harness: process groups ${groups[*]} ignored SIGTERM; sending SIGKILL" >&2
    for pgid in "${groups[@]}"; do
        kill -KILL -- "-$pgid" 2>/dev/null || true
    done
    wait_groups 5
    ((${#groups[@]} == 0)) || die "process groups ${groups[*]} survived SIGKILL"
fi

# The dead are reaped by init (or a subreaper), not by us; give it a moment so
# a `pgrep` right after stop shows nothing, but do not depend on it.
groups=("${stopped[@]+"${stopped[@]}"}")
wait_groups 3 any

rm -f "$STATE"/pids/*.pid
