# shellcheck shell=bash disable=SC2034  # variables are for the scripts that source this
# Shared by the HA lane scripts (sourced). Builds on the dev harness's lib.sh:
# the same state-dir rules, and the same stop.sh, which signals only the
# process groups recorded in STATE/pids.
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
HA_DIR=$HARNESS_DIR/ha
HA_DEFAULT_STATE=$REPO_ROOT/.deps/ha
HA_NODES=(1 2 3)

# A caller's BAO_*/VAULT_* settings are meant for clients and must not
# reconfigure a server.
server_env() {
    local var
    SERVER_ENV=(env)
    for var in $(compgen -e | grep -E '^(BAO|VAULT)_' || true); do
        SERVER_ENV+=(-u "$var")
    done
}

# setsid gives each process its own group, which is what stop.sh signals;
# bash's `&` child is no group leader, so setsid execs in place and $! is
# the process's own pid.
launch() { # NAME CMD...
    local name=$1
    shift
    setsid "$@" >>"$STATE/logs/$name.log" 2>&1 </dev/null &
    echo $! >"$STATE/pids/$name.pid"
}

launch_node() { # N
    server_env
    launch "node$1" "${SERVER_ENV[@]}" "$BAO_BIN" server -config="$STATE/node$1/config.hcl"
}

# curl against one listener of the lane, verifying the test CA. Prints the
# HTTP status; the body goes to $BODY (default /dev/null).
lane_curl() { # URL [CURL ARGS...]
    local url=$1
    shift
    curl -sS -o "${BODY:-/dev/null}" -w '%{http_code}' -m 5 --cacert "$STATE/pki/ca.pem" "$@" "$url" 2>/dev/null || true
}

node_health() { # N -> sys/health status: 200 active, 429 standby, 503 sealed, 501 uninitialised, 000 down
    lane_curl "https://127.0.0.1:$(node_port "$1")/v1/sys/health"
}

node_port() { # N
    sed -n 's/^NODE'"$1"'_PORT=//p' "$STATE/ports"
}

# Polls COMMAND until it succeeds, for at most SECONDS; says WHAT timed out.
wait_for() { # SECONDS WHAT COMMAND...
    local limit=$1 what=$2 end
    shift 2
    end=$((SECONDS + limit))
    until "$@"; do
        ((SECONDS < end)) || die "timed out after ${limit}s waiting for $what"
        sleep 0.1
    done
}
