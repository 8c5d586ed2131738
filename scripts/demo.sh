#!/usr/bin/env bash
# `make demo`: starts a real local OpenBao (with TLS, Kubernetes auth through
# the TokenReview stand-in, and seeded secrets), then runs the main job once:
# baowrap logs in with a ServiceAccount JWT, fetches DB_PASSWORD into locked
# memory and starts a shell that proves it got the secret without printing it.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$root/scripts/install-deps.sh" harness
"$root/Tests/harness/setup.sh"
state="$root/.deps/harness-demo"
trap '"$root/Tests/harness/stop.sh" "$state" >/dev/null 2>&1 || true' EXIT
echo "== starting a local OpenBao (TLS, Kubernetes auth, KV v1 and v2)"
"$root/Tests/harness/start.sh" "$state" >/dev/null
set -a; source "$state/env"; set +a

export BAOWRAP_ADDR=$BAO_TLS_ADDR BAOWRAP_CACERT=$CA_CERT BAOWRAP_ROLE=$K8S_ROLE \
       BAOWRAP_JWT_FILE=$TOKEN_K8S_VALID BAOWRAP_LOG_FORMAT=text
bin="$root/dist/baowrap"
echo
echo "== baowrap check: what would be injected (names, hashed paths, versions; never values)"
"$bin" check --secret DB_PASSWORD=secret/app/db#password --secret API_TOKEN=kv1/app/api#token
echo
echo "== baowrap -- sh -c '...': the workload gets DB_PASSWORD in its environment"
"$bin" --secret DB_PASSWORD=secret/app/db#password -- \
  sh -c 'printf "workload: DB_PASSWORD is set, %s characters, sha256 %.12s...\n" "${#DB_PASSWORD}" "$(printf %s "$DB_PASSWORD" | sha256sum)"'
printf 'expected: %s characters, sha256 %.12s...\n' \
  "$(jq -r '."secret/app/db#password"' "$EXPECTED_JSON" | tr -d '\n' | wc -c)" \
  "$(jq -j '."secret/app/db#password"' "$EXPECTED_JSON" | sha256sum)"
