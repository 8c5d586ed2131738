#!/usr/bin/env python3
"""Mint RS256 JWTs for the baowrap integration tests.

Two shapes: `k8s` mimics a projected ServiceAccount token as the kube-apiserver
issues it, `jwt` is a plain OIDC-style token for OpenBao's jwt auth method.
Any claim can be added or overridden with --claim, so tests can build the odd
token they need without another tool.

Importable: `mint(key_path, claims)`, `k8s_claims(...)`, `jwt_claims(...)`.
"""
import argparse
import base64
import hashlib
import json
import sys
import time
import uuid

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

K8S_ISSUER = "https://kubernetes.default.svc.cluster.local"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def load_private_key(path):
    with open(path, "rb") as f:
        return serialization.load_pem_private_key(f.read(), password=None)


def key_id(public_key) -> str:
    # The apiserver derives `kid` from the public key, so tokens signed by
    # different keys are distinguishable in logs the same way.
    der = public_key.public_bytes(serialization.Encoding.DER,
                                  serialization.PublicFormat.SubjectPublicKeyInfo)
    return b64url(hashlib.sha256(der).digest())


def mint(key_path, claims: dict) -> str:
    key = load_private_key(key_path)
    header = {"alg": "RS256", "kid": key_id(key.public_key())}
    signing_input = (b64url(json.dumps(header, separators=(",", ":")).encode()) + "." +
                     b64url(json.dumps(claims, separators=(",", ":")).encode()))
    signature = key.sign(signing_input.encode("ascii"), padding.PKCS1v15(), hashes.SHA256())
    return signing_input + "." + b64url(signature)


def _times(exp_in: int, now=None) -> dict:
    now = int(time.time()) if now is None else now
    # An already-expired token was issued before it expired, like a real stale one.
    iat = now if exp_in > 0 else now + exp_in - 60
    return {"iat": iat, "nbf": iat, "exp": now + exp_in}


def k8s_claims(namespace="default", sa="app", sa_uid=None, aud=("openbao",),
               exp_in=3600, iss=K8S_ISSUER, now=None) -> dict:
    claims = {
        "aud": list(aud),
        "iss": iss,
        "jti": str(uuid.uuid4()),
        "kubernetes.io": {
            "namespace": namespace,
            "serviceaccount": {"name": sa, "uid": sa_uid or str(uuid.uuid4())},
        },
        "sub": f"system:serviceaccount:{namespace}:{sa}",
    }
    claims.update(_times(exp_in, now))
    return claims


def jwt_claims(iss, sub, aud=("baowrap-test",), exp_in=3600, now=None) -> dict:
    aud = list(aud)
    claims = {"iss": iss, "sub": sub, "aud": aud[0] if len(aud) == 1 else aud}
    claims.update(_times(exp_in, now))
    return claims


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--key", required=True, help="PEM RSA private key to sign with")
    p.add_argument("--kind", choices=["k8s", "jwt"], default="k8s")
    p.add_argument("--namespace", "--ns", default="default", help="k8s: namespace")
    p.add_argument("--sa", default="app", help="k8s: service account name")
    p.add_argument("--sa-uid", help="k8s: service account uid (random if omitted)")
    p.add_argument("--iss", help=f"issuer (k8s default {K8S_ISSUER})")
    p.add_argument("--sub", help="jwt: subject")
    p.add_argument("--aud", action="append",
                   help="audience, repeatable (k8s default openbao, jwt default baowrap-test)")
    p.add_argument("--exp-in", type=int, default=3600,
                   help="seconds until exp; negative = already expired")
    p.add_argument("--claim", action="append", default=[], metavar="NAME=JSON",
                   help="set a top-level claim to a JSON value (plain string if not JSON)")
    p.add_argument("--drop-claim", action="append", default=[], metavar="NAME")
    p.add_argument("--out", help="write the token to this file, without a trailing newline "
                                 "(as the kubelet writes projected tokens)")
    a = p.parse_args(argv)

    if a.kind == "k8s":
        claims = k8s_claims(a.namespace, a.sa, a.sa_uid, a.aud or ["openbao"], a.exp_in,
                            a.iss or K8S_ISSUER)
    else:
        if not a.iss or not a.sub:
            p.error("--kind jwt needs --iss and --sub")
        claims = jwt_claims(a.iss, a.sub, a.aud or ["baowrap-test"], a.exp_in)
    for item in a.claim:
        name, _, raw = item.partition("=")
        try:
            claims[name] = json.loads(raw)
        except json.JSONDecodeError:
            claims[name] = raw
    for name in a.drop_claim:
        claims.pop(name, None)
    token = mint(a.key, claims)
    if a.out:
        with open(a.out, "w") as f:
            f.write(token)
    else:
        sys.stdout.write(token + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
