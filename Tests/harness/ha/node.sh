#!/usr/bin/env bash
# Faults for the HA lane's tests, one node at a time. Usage:
#   node.sh STATE active       print the number of the active node
#   node.sh STATE kill N       SIGKILL node N (a crash: no leadership hand-off)
#   node.sh STATE start N      start node N again; returns once it is unsealed
#   node.sh STATE seal N       seal node N (a standby): it keeps its listener and
#                              answers 503 until restarted (kill + start)
#   node.sh STATE settle       wait until all 3 nodes are unsealed, one active,
#                              every node serves a write made just before, and
#                              haproxy counts every node up
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
resolve_state_dir "$1"
[[ -f $STATE/env ]] || die "no HA lane in $STATE"
BAO_BIN=$(sed -n 's/^BAO_BIN=//p' "$STATE/env")
ROOT_TOKEN=$(sed -n 's/^HA_ROOT_TOKEN=//p' "$STATE/env")
action=$2
n=${3:-}
[[ -z $n || $n =~ ^[123]$ ]] || die "no node $n"

active() {
    local i
    for i in "${HA_NODES[@]}"; do
        [[ $(node_health "$i") = 200 ]] && { echo "$i"; return 0; }
    done
    return 1
}
unsealed() { [[ $(node_health "$n") =~ ^(200|429)$ ]]; }
settled() {
    local i
    for i in "${HA_NODES[@]}"; do
        [[ $(node_health "$i") =~ ^(200|429)$ ]] || return 1
    done
    active >/dev/null
}
# A restarted standby serves reads from its own Raft copy while the leader
# is still catching it up, for seconds: tests must not start on one.
mark() {
    MARK=$(openssl rand -hex 8)
    [[ $(lane_curl "https://127.0.0.1:$(node_port "$(active)")/v1/secret/data/lane/settle" -X POST         -H "X-Vault-Token: $ROOT_TOKEN" --data-binary "{\"data\":{\"mark\":\"$MARK\"}}") = 200 ]]
}
caught_up() {
    local i
    for i in "${HA_NODES[@]}"; do
        BODY=$STATE/settle.json lane_curl "https://127.0.0.1:$(node_port "$i")/v1/secret/data/lane/settle" \
            -H "X-Vault-Token: $ROOT_TOKEN" >/dev/null
        [[ $(jq -r '.data.data.mark // empty' "$STATE/settle.json" 2>/dev/null) = "$MARK" ]] || return 1
    done
}
# haproxy logs every change of a server's state; none yet means up.
haproxy_all_up() {
    local i last
    for i in "${HA_NODES[@]}"; do
        last=$(grep -o "Server bao_unsealed/node$i is [A-Z]*" "$STATE/logs/haproxy.log" | tail -n 1)
        [[ -z $last || $last = *UP ]] || return 1
    done
}

case $action in
active) active || die "no active node" ;;
kill)
    pid=$(<"$STATE/pids/node$n.pid")
    kill -KILL "$pid" 2>/dev/null || true
    gone() { ! kill -0 "$pid" 2>/dev/null || [[ $(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) = Z ]]; }
    wait_for 10 "node$n to die" gone
    ;;
start)
    launch_node "$n"
    wait_for 30 "node$n to unseal" unsealed
    ;;
seal)
    status=$(lane_curl "https://127.0.0.1:$(node_port "$n")/v1/sys/seal" -X PUT -H "X-Vault-Token: $ROOT_TOKEN")
    [[ $status = 204 ]] || die "sealing node$n answered $status"
    sealed() { [[ $(node_health "$n") = 503 ]]; }
    wait_for 10 "node$n to seal" sealed
    ;;
settle)
    wait_for 60 "all nodes unsealed with a leader" settled
    wait_for 10 "a write through the active node" mark
    wait_for 30 "every node to serve the latest write" caught_up
    wait_for 10 "haproxy to count every node up" haproxy_all_up
    ;;
*) die "unknown action $action" ;;
esac
