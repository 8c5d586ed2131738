#!/usr/bin/env bash
# Prove, with curl alone, that a harness started by start.sh behaves as the
# baowrap tests assume: logins, seeded secrets, namespace, broker routes and
# every fault-proxy mode. Prints one line per check; exits 1 if any failed.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
resolve_state_dir "${1:-}"
[[ -f $STATE/env ]] || die "no harness env in $STATE; run start.sh first"
# shellcheck source=/dev/null
source "$STATE/env"

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

# --- helpers -------------------------------------------------------------------
bail() { echo "    $*" >&2; return 1; }
want_eq() { # GOT WANT WHAT
    [[ $1 == "$2" ]] || bail "$3: got '${1:0:200}', want '${2:0:200}'"
}
# Expected values are compared as JSON text, which is byte-exact even for
# trailing newlines and multi-byte characters.
expected_json() { jq -c --arg k "$1" '.[$k] // error("no expected value for \($k)")' "$EXPECTED_JSON"; }

# Direct OpenBao over TLS, verifying the CA and the name openbao.test.
bao() { # PATH [CURL ARGS...] -> body in $WORK/body, status on stdout
    local path=$1
    shift
    curl -sS -o "$WORK/body" -w '%{http_code}' --cacert "$CA_CERT" \
        --resolve "openbao.test:$BAO_TLS_PORT:127.0.0.1" "$@" "https://openbao.test:$BAO_TLS_PORT/v1/$path"
}
login_body() { jq -cn --arg r "$1" --rawfile j "$2" '{role: $r, jwt: $j}'; }
login() { # MOUNT ROLE JWT_FILE [CURL ARGS...] -> client token
    local mount=$1 role=$2 jwt=$3 code
    shift 3
    code=$(bao "auth/$mount/login" --data-binary "$(login_body "$role" "$jwt")" "$@")
    want_eq "$code" 200 "login $mount/$role with $(basename "$jwt")"
    jq -er .auth.client_token "$WORK/body"
}
read_secret() { # TOKEN API_PATH JQ_FILTER [CURL ARGS...] -> JSON of the selected value
    local token=$1 path=$2 filter=$3 code
    shift 3
    code=$(bao "$path" -H "X-Vault-Token: $token" "$@")
    want_eq "$code" 200 "GET $path"
    jq -c "$filter" "$WORK/body"
}
fault() { # JSON for POST /mode
    curl -sSf -o /dev/null "$FAULT_CONTROL_ADDR/mode" --data-binary "$1"
}
via_fault() { # PATH [CURL ARGS...] -> status; body in $WORK/body
    local path=$1
    shift
    curl -sS -o "$WORK/body" -w '%{http_code}' --cacert "$CA_CERT" \
        --resolve "openbao.test:$FAULT_PORT:127.0.0.1" "$@" "https://openbao.test:$FAULT_PORT/v1/$path"
}

passed=0
failed=()
# Each check runs in a subshell with errexit live (not in an `if`, where bash
# would silently disable it), so any failing step fails the check.
check() { # NAME FUNCTION
    local rc
    set +e
    ("$2")
    rc=$?
    set -e
    if ((rc == 0)); then
        echo "ok   $1"
        passed=$((passed + 1))
    else
        echo "FAIL $1"
        failed+=("$1")
    fi
}

# --- checks --------------------------------------------------------------------
t_k8s_login() {
    local token
    token=$(login kubernetes app "$TOKEN_K8S_VALID")
    [[ $token == s.* ]] || bail "unexpected client token shape"
    jq -e '.auth.policies | index("app-read")' "$WORK/body" >/dev/null
}

t_k8s_denials() {
    local name file code
    for name in INTRUDER EXPIRED WRONG_AUD BAD_SIG; do
        file=TOKEN_K8S_$name
        code=$(bao auth/kubernetes/login --data-binary "$(login_body app "${!file}")")
        want_eq "$code" 403 "login with $name token"
    done
    code=$(bao auth/kubernetes/login --data-binary "$(login_body app "$TOKEN_K8S_EXPIRED")")
    grep -q 'token is expired' "$WORK/body" || bail "expired token: $(cat "$WORK/body")"
    # A role binding another service account refuses the valid token.
    code=$(bao auth/kubernetes/login --data-binary "$(login_body other "$TOKEN_K8S_VALID")")
    want_eq "$code" 403 "role other with app token"
}

t_tls_verification() {
    local rc=0
    curl -sS -o /dev/null --cacert "$OTHER_CA_CERT" "$BAO_TLS_ADDR/v1/sys/health" 2>/dev/null || rc=$?
    want_eq "$rc" 60 "curl exit with the unrelated CA"
}

t_jwt_login() {
    local code
    login jwt app-jwt "$TOKEN_JWT_VALID" >/dev/null
    code=$(bao auth/jwt/login --data-binary "$(login_body app-jwt "$TOKEN_JWT_WRONG_AUD")")
    [[ $code == 4?? ]] || bail "wrong-aud jwt login answered $code"
    grep -q 'aud' "$WORK/body" || bail "wrong-aud jwt error: $(cat "$WORK/body")"
}

t_kv_reads() {
    local token ref path key got n
    token=$(login kubernetes app "$TOKEN_K8S_VALID")
    for ref in secret/app/db#username secret/app/db#password secret/app/versioned#value \
        secret/app/big#value secret/app/multiline#value secret/many/p000#value \
        secret/many/p042#value secret/many/p099#value; do
        path=${ref%%#*}
        key=${ref#*#}
        got=$(read_secret "$token" "secret/data/${path#secret/}" ".data.data[\"$key\"]")
        want_eq "$got" "$(expected_json "$ref")" "$ref"
    done
    for n in 1 2 3; do
        got=$(read_secret "$token" "secret/data/app/versioned?version=$n" .data.data.value)
        want_eq "$got" "$(expected_json "secret/app/versioned#value#$n")" "versioned v$n"
    done
    got=$(read_secret "$token" "secret/data/app/deleted?version=1" .data.data.value)
    want_eq "$got" "$(expected_json "secret/app/deleted#value#1")" "deleted v1"
    for key in num float bool null obj arr; do
        got=$(read_secret "$token" secret/data/app/types ".data.data[\"$key\"] | tojson")
        want_eq "$got" "$(expected_json "secret/app/types#$key")" "types#$key"
    done
    got=$(read_secret "$token" secret/data/app/big '.data.data.value | length')
    want_eq "$got" 65536 "big value length"
    got=$(read_secret "$token" kv1/app/api .data.token)
    want_eq "$got" "$(expected_json "kv1/app/api#token")" "kv1 token"
    got=$(read_secret "$token" sys/internal/ui/mounts/secret/app/db .data.options.version)
    want_eq "$got" '"2"' "secret/ engine version"
    got=$(read_secret "$token" sys/internal/ui/mounts/kv1/app/api .data.options.version)
    want_eq "$got" '"1"' "kv1/ engine version"
}

t_kv_errors() {
    local token code
    token=$(login kubernetes app "$TOKEN_K8S_VALID")
    code=$(bao secret/data/forbidden/x -H "X-Vault-Token: $token")
    want_eq "$code" 403 "forbidden path"
    code=$(bao secret/data/app/deleted -H "X-Vault-Token: $token")
    want_eq "$code" 404 "soft-deleted latest version"
    jq -e '.data.metadata.deletion_time != ""' "$WORK/body" >/dev/null || bail "no deletion_time"
    code=$(bao secret/data/app/destroyed -H "X-Vault-Token: $token")
    want_eq "$code" 404 "destroyed version"
    jq -e '.data.metadata.destroyed == true' "$WORK/body" >/dev/null || bail "not marked destroyed"
    code=$(bao secret/data/app/nonexistent -H "X-Vault-Token: $token")
    want_eq "$code" 404 "missing secret"
}

t_namespace() {
    local token got code
    token=$(login kubernetes app "$TOKEN_K8S_VALID" -H "X-Vault-Namespace: $BAO_TEST_NAMESPACE")
    got=$(read_secret "$token" secret/data/app/db .data.data.password \
        -H "X-Vault-Namespace: $BAO_TEST_NAMESPACE")
    want_eq "$got" "$(expected_json "$BAO_TEST_NAMESPACE:secret/app/db#password")" "team-a password"
    # A root-namespace token is worthless inside team-a.
    token=$(login kubernetes app "$TOKEN_K8S_VALID")
    code=$(bao secret/data/app/db -H "X-Vault-Token: $token" -H "X-Vault-Namespace: $BAO_TEST_NAMESPACE")
    want_eq "$code" 403 "root-namespace token in team-a"
}

t_revoke_and_audit() {
    local token code
    token=$(login kubernetes app "$TOKEN_K8S_VALID")
    code=$(bao auth/token/revoke-self -X POST -H "X-Vault-Token: $token")
    want_eq "$code" 204 "revoke-self"
    code=$(bao auth/token/lookup-self -H "X-Vault-Token: $token")
    want_eq "$code" 403 "lookup of revoked token"
    grep -q '"path":"auth/token/revoke-self"' "$AUDIT_LOG" || bail "no revoke-self in $AUDIT_LOG"
}

t_bao_mtls() {
    local code rc=0
    code=$(curl -sS -o /dev/null -w '%{http_code}' --cacert "$CA_CERT" --cert "$CLIENT_CERT" \
        --key "$CLIENT_KEY" "$BAO_MTLS_ADDR/v1/sys/health")
    want_eq "$code" 200 "mTLS listener with client cert"
    curl -sS -o /dev/null --cacert "$CA_CERT" "$BAO_MTLS_ADDR/v1/sys/health" 2>/dev/null || rc=$?
    # TLS 1.3 reports the refused handshake on the first send or receive.
    [[ $rc == 35 || $rc == 55 || $rc == 56 ]] || bail "mTLS listener without client cert: curl exit $rc"
}

broker() { # BASE_URL PATH [CURL ARGS...] -> status; body in $WORK/body
    local base=$1 path=$2
    shift 2
    curl -sS -o "$WORK/body" -w '%{http_code}' --cacert "$CA_CERT" \
        --connect-to "broker.test::127.0.0.1:" "$@" "${base/127.0.0.1/broker.test}/$path"
}

t_broker_tls() {
    local token got code
    code=$(broker "$BROKER_ADDR" v1/auth/kubernetes/login \
        --data-binary "$(login_body app "$TOKEN_K8S_VALID")")
    want_eq "$code" 200 "login through broker"
    token=$(jq -r .auth.client_token "$WORK/body")
    code=$(broker "$BROKER_ADDR" v1/secret/data/app/big -H "X-Vault-Token: $token")
    want_eq "$code" 200 "big secret through broker"
    got=$(jq -c .data.data.value "$WORK/body")
    want_eq "$got" "$(expected_json secret/app/big#value)" "big secret through broker"
    code=$(broker "$BROKER_ADDR" v1/secret/data/app/db -H "X-Vault-Token: $token" \
        -H "X-Vault-Namespace: $BAO_TEST_NAMESPACE")
    want_eq "$code" 403 "namespace header passed through the broker"
}

t_broker_mtls() {
    local code
    code=$(broker "$BROKER_MTLS_ADDR" v1/sys/health --cert "$CLIENT_CERT" --key "$CLIENT_KEY")
    want_eq "$code" 200 "mTLS broker with client cert"
    code=$(broker "$BROKER_MTLS_ADDR" v1/sys/health)
    want_eq "$code" 400 "mTLS broker without client cert"
    grep -q 'No required SSL certificate' "$WORK/body" || bail "unexpected body: $(cat "$WORK/body")"
}

t_broker_broken() {
    local out
    out=$(curl -sS -o "$WORK/body" -w '%{http_code} %{content_type}' --cacert "$CA_CERT" \
        --connect-to "broker.test::127.0.0.1:" "${BROKER_BROKEN_ADDR/127.0.0.1/broker.test}/v1/sys/health")
    want_eq "$out" "502 text/html" "status and type"
    grep -q '<center><h1>502 Bad Gateway</h1></center>' "$WORK/body" || bail "not nginx's 502 page"
}

t_fault_status_then_pass() {
    curl -sSf -o /dev/null -X POST "$FAULT_CONTROL_ADDR/reset"
    want_eq "$(via_fault sys/health)" 200 "pass"
    fault '{"mode":"status","status":503,"count":1}'
    want_eq "$(via_fault sys/health)" 503 "first request after status fault"
    want_eq "$(cat "$WORK/body")" '{"errors":["injected"]}' "injected body"
    want_eq "$(via_fault sys/health)" 200 "second request (count exhausted)"
    fault '{"mode":"status","status":429,"path":"/v1/secret/"}'
    want_eq "$(via_fault sys/health)" 200 "request outside the path filter"
    want_eq "$(via_fault secret/data/app/db -H "X-Vault-Token: $BAO_ROOT_TOKEN")" 429 "filtered request"
    fault '{"mode":"pass"}'
    want_eq "$(via_fault secret/data/app/db -H "X-Vault-Token: $BAO_ROOT_TOKEN")" 200 "pass again"
    jq -e 'map(.status) == [200, 503, 200, 200, 429, 200]' \
        <(curl -sSf "$FAULT_CONTROL_ADDR/requests") >/dev/null || bail "request log mismatch"
}

t_fault_delay() {
    local t
    fault '{"mode":"delay","ms":300,"count":1}'
    t=$(curl -sS -o /dev/null -w '%{time_total}' --cacert "$CA_CERT" "$FAULT_ADDR/v1/sys/health")
    awk -v t="$t" 'BEGIN { exit !(t >= 0.3) }' || bail "delayed request took ${t}s"
}

t_fault_blackhole() {
    local rc=0
    fault '{"mode":"blackhole","count":1}'
    curl -sS -o /dev/null -m 2 --cacert "$CA_CERT" "$FAULT_ADDR/v1/sys/health" 2>/dev/null || rc=$?
    want_eq "$rc" 28 "curl exit for a blackholed request"
}

t_fault_reset() {
    local rc=0 size code
    fault '{"mode":"reset","count":1}'
    size=$(curl -sS -o /dev/null -w '%{size_download}' --cacert "$CA_CERT" \
        -H "X-Vault-Token: $BAO_ROOT_TOKEN" "$FAULT_ADDR/v1/secret/data/app/big" 2>/dev/null) || rc=$?
    [[ $rc == 18 || $rc == 56 ]] || bail "curl exit $rc for a reset mid-body"
    ((size > 0 && size < 65536)) || bail "received $size bytes before the reset"
    # The next request passes, and a chunked upstream answer arrives intact.
    code=$(via_fault secret/data/app/big -H "X-Vault-Token: $BAO_ROOT_TOKEN")
    want_eq "$code" 200 "big secret after the reset"
    want_eq "$(jq -c .data.data.value "$WORK/body")" "$(expected_json secret/app/big#value)" \
        "big secret via proxy"
}

t_fault_html_empty_garbage() {
    local out
    fault '{"mode":"html","count":1}'
    out=$(curl -sS -o "$WORK/body" -w '%{http_code} %{content_type}' --cacert "$CA_CERT" \
        "$FAULT_ADDR/v1/sys/health")
    want_eq "$out" "502 text/html" "html fault"
    grep -q '<html>' "$WORK/body" || bail "html fault body"
    fault '{"mode":"empty","status":504,"count":1}'
    out=$(curl -sS -o /dev/null -w '%{http_code} %{size_download}' --cacert "$CA_CERT" \
        "$FAULT_ADDR/v1/sys/health")
    want_eq "$out" "504 0" "empty fault"
    fault '{"mode":"garbage","count":1}'
    out=$(curl -sS -o /dev/null -w '%{http_code} %{size_download} %{content_type}' --cacert "$CA_CERT" \
        "$FAULT_ADDR/v1/sys/health")
    want_eq "$out" "200 8388608 application/json" "garbage fault"
}

t_fault_keepalive_and_concurrency() {
    local connects codes i
    connects=$(curl -sS -o /dev/null -o /dev/null -w '%{num_connects}\n' --cacert "$CA_CERT" \
        "$FAULT_ADDR/v1/sys/health" "$FAULT_ADDR/v1/sys/health" | paste -sd' ')
    want_eq "$connects" "1 0" "connections opened for two requests"
    for i in $(seq 150); do
        printf 'url = "%s/v1/sys/health?n=%s"\noutput = "/dev/null"\n' "$FAULT_ADDR" "$i"
    done >"$WORK/many.curlrc"
    # --no-progress-meter: curl 7.88 ignores -s for the --parallel meter.
    codes=$(curl -sS --no-progress-meter --parallel --parallel-immediate --parallel-max 150 \
        --cacert "$CA_CERT" -w '%{http_code}\n' -K "$WORK/many.curlrc" | sort | uniq -c | awk '{print $1 "x" $2}')
    want_eq "$codes" 150x200 "150 concurrent connections"
}

t_tokenreview_reject() {
    local before after code
    before=$(wc -l <"$TOKENREVIEW_LOG")
    echo reject >"$TOKENREVIEW_CONTROL"
    code=$(bao auth/kubernetes/login --data-binary "$(login_body app "$TOKEN_K8S_VALID")")
    : >"$TOKENREVIEW_CONTROL"
    want_eq "$code" 403 "login while TokenReview rejects"
    login kubernetes app "$TOKEN_K8S_VALID" >/dev/null
    after=$(wc -l <"$TOKENREVIEW_LOG")
    want_eq "$((after - before))" 2 "reviews logged"
    tail -n 2 "$TOKENREVIEW_LOG" | jq -se 'map(.authenticated) == [false, true]' >/dev/null ||
        bail "review log does not show the rejection"
}

check "kubernetes login over TLS (CA + server name verified)" t_k8s_login
check "kubernetes login denials (intruder, expired, wrong aud, bad signature, other role)" t_k8s_denials
check "TLS refuses an unrelated CA" t_tls_verification
check "jwt login (valid; wrong audience refused)" t_jwt_login
check "KV v2/v1 reads match expected.json" t_kv_reads
check "KV errors (forbidden, deleted, destroyed, missing)" t_kv_errors
check "namespace team-a login and read" t_namespace
check "revoke-self and audit log" t_revoke_and_audit
check "OpenBao mTLS listener" t_bao_mtls
check "broker TLS route" t_broker_tls
check "broker mTLS route" t_broker_mtls
check "broker /broken/ gives nginx 502 HTML" t_broker_broken
check "fault proxy: status, count, path filter, request log" t_fault_status_then_pass
check "fault proxy: delay" t_fault_delay
check "fault proxy: blackhole" t_fault_blackhole
check "fault proxy: reset mid-body" t_fault_reset
check "fault proxy: html, empty, garbage" t_fault_html_empty_garbage
check "fault proxy: keep-alive and 150 concurrent connections" t_fault_keepalive_and_concurrency
check "TokenReview control file flips to reject" t_tokenreview_reject

curl -sS -o /dev/null -X POST "$FAULT_CONTROL_ADDR/reset" || true
echo "$passed passed, ${#failed[@]} failed"
if ((${#failed[@]})); then
    printf 'failed check: %s\n' "${failed[@]}" >&2
    exit 1
fi
