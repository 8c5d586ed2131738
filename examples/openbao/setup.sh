#!/usr/bin/env bash
# Configures OpenBao for one workload wrapped by baowrap: Kubernetes auth,
# a least-privilege read policy and a role bound to one ServiceAccount.
# Safe to run again: it converges to the same configuration.
#
# Needs the `bao` CLI (or BAO_BIN) and jq, and an admin token. Parameters, as
# environment variables:
#   BAO_ADDR, BAO_TOKEN, BAO_CACERT  how the bao CLI reaches OpenBao (admin)
#   KUBERNETES_HOST        the Kubernetes API as OpenBao reaches it, for
#                          TokenReview (required), e.g. https://kubernetes.default.svc
#   KUBERNETES_CA_CERT     file: CA of that API (default: none; an OpenBao
#                          running in the cluster uses its pod's CA)
#   TOKEN_REVIEWER_JWT     file: a JWT allowed to call TokenReview (default:
#                          none; in-cluster OpenBao uses its own ServiceAccount)
#   DISABLE_LOCAL_CA_JWT   true when OpenBao runs outside the cluster and no
#                          reviewer JWT is given: each login's own JWT then
#                          reviews itself (its ServiceAccount needs the
#                          system:auth-delegator ClusterRole) (default: false)
#   AUTH_PATH              auth mount (default: kubernetes)
#   NAMESPACE              the workload's namespace (default: my-app)
#   SERVICE_ACCOUNT        its ServiceAccount (default: my-app)
#   ROLE                   the role baowrap logs in with (default: my-app)
#   AUDIENCE               the projected token's audience (default: openbao)
#   SECRET_PATHS           space-separated KV paths, as in baowrap references
#                          (MOUNT/PATH, no #KEY); each and everything below it
#                          becomes readable (default: secret/my-app)
#   TOKEN_TTL, TOKEN_MAX_TTL  lifetime of the login token (default: 1m, 2m):
#                          baowrap revokes it right after the fetch anyway
set -euo pipefail

bao=${BAO_BIN:-bao}
: "${KUBERNETES_HOST:?set KUBERNETES_HOST to the Kubernetes API URL OpenBao calls for TokenReview}"
auth_path=${AUTH_PATH:-kubernetes}
namespace=${NAMESPACE:-my-app}
service_account=${SERVICE_ACCOUNT:-my-app}
role=${ROLE:-my-app}
audience=${AUDIENCE:-openbao}
secret_paths=${SECRET_PATHS:-secret/my-app}
policy=$role-read

# 1. Kubernetes auth at AUTH_PATH.
if ! "$bao" auth list -format=json | jq -e --arg p "$auth_path/" 'has($p)' >/dev/null; then
    "$bao" auth enable -path="$auth_path" kubernetes
fi
config=("kubernetes_host=$KUBERNETES_HOST" "disable_local_ca_jwt=${DISABLE_LOCAL_CA_JWT:-false}")
[[ -z ${KUBERNETES_CA_CERT:-} ]] || config+=("kubernetes_ca_cert=@$KUBERNETES_CA_CERT")
[[ -z ${TOKEN_REVIEWER_JWT:-} ]] || config+=("token_reviewer_jwt=@$TOKEN_REVIEWER_JWT")
"$bao" write "auth/$auth_path/config" "${config[@]}"

# 2. Read access to SECRET_PATHS and nothing else: no list, no metadata, no
#    default policy. KV v2 data lives under MOUNT/data/, so each path's mount
#    and engine version are looked up rather than guessed.
rules=$'# Written by examples/openbao/setup.sh for role '"$role"$'\n'
for p in $secret_paths; do
    p=${p#bao:}
    p=${p#vault:}
    p=${p%/}
    mount_info=$("$bao" read -format=json "sys/internal/ui/mounts/$p")
    mount=$(jq -r '.data.path' <<<"$mount_info")
    mount=${mount%/}
    version=$(jq -r '.data.options.version // "1"' <<<"$mount_info")
    [[ $(jq -r '.data.type' <<<"$mount_info") == kv ]] || { echo "setup.sh: $p is not on a KV mount" >&2; exit 1; }
    rest=${p#"$mount"}
    rest=${rest#/}
    [[ $version == 2 ]] && api="$mount/data${rest:+/$rest}" || api="$mount${rest:+/$rest}"
    rules+="path \"$api\" { capabilities = [\"read\"] }"$'\n'
    rules+="path \"$api/*\" { capabilities = [\"read\"] }"$'\n'
done
# baowrap revokes its token once the workload has its secrets.
rules+='path "auth/token/revoke-self" { capabilities = ["update"] }'$'\n'
"$bao" policy write "$policy" - <<<"$rules"

# 3. The role: this ServiceAccount in this namespace, with this audience only.
"$bao" write "auth/$auth_path/role/$role" \
    "bound_service_account_names=$service_account" \
    "bound_service_account_namespaces=$namespace" \
    "audience=$audience" \
    "token_policies=$policy" \
    token_no_default_policy=true \
    "token_ttl=${TOKEN_TTL:-1m}" \
    "token_max_ttl=${TOKEN_MAX_TTL:-2m}"

echo "OpenBao is ready. baowrap settings for pods of $namespace/$service_account (token audience $audience):"
[[ $auth_path == kubernetes ]] || echo "  BAOWRAP_AUTH_PATH=$auth_path"
echo "  BAOWRAP_ROLE=$role"
