#!/usr/bin/env python3
"""Stand-in for the kube-apiserver TokenReview API (authentication.k8s.io/v1).

OpenBao's kubernetes auth method posts every login's JWT here. This server does
what the apiserver's ServiceAccount token authenticator does with it: verify the
RS256 signature with the SA signing key, the issuer, exp/nbf, and intersect the
token's audiences with the requested ones (the apiserver's own audiences when
the request names none). Both outcomes are HTTP 201, as on a real cluster.

If the control file contains `reject`, every review answers
authenticated:false, as if the ServiceAccount had been deleted; tests use it to
force renewals and re-logins to fail. Each review is logged as one JSON line
(never the token itself).
"""
import argparse
import base64
import hashlib
import http.server
import json
import socket
import ssl
import threading
import time

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

REVIEW_PATH = "/apis/authentication.k8s.io/v1/tokenreviews"


def b64url_decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


class Reviewer:
    def __init__(self, public_key, issuer, api_audiences, control_path, log_path):
        self.public_key = public_key
        self.issuer = issuer
        self.api_audiences = api_audiences
        self.control_path = control_path
        self.log_path = log_path
        self.log_lock = threading.Lock()

    def rejecting(self) -> bool:
        try:
            with open(self.control_path) as f:
                return f.read().strip() == "reject"
        except FileNotFoundError:
            return False

    def authenticate(self, token: str, audiences: list):
        """Return (status dict, username or None)."""
        try:
            header_b64, claims_b64, sig_b64 = token.split(".")
            header = json.loads(b64url_decode(header_b64))
            claims = json.loads(b64url_decode(claims_b64))
            signature = b64url_decode(sig_b64)
        except (ValueError, UnicodeDecodeError):
            return self.denied("invalid bearer token, token is not a JWS"), None
        if header.get("alg") != "RS256":
            return self.denied("invalid bearer token, unsupported signing algorithm"), None
        try:
            self.public_key.verify(signature, f"{header_b64}.{claims_b64}".encode("ascii"),
                                   padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            return self.denied("invalid bearer token, invalid signature"), None
        if claims.get("iss") != self.issuer:
            return self.denied("invalid bearer token, token issuer is not accepted"), None
        now = time.time()
        if "exp" not in claims or now >= claims["exp"]:
            return self.denied("invalid bearer token, service account token has expired"), None
        if now < claims.get("nbf", 0):
            return self.denied("invalid bearer token, service account token is not valid yet"), None
        token_aud = claims.get("aud", [])
        token_aud = [token_aud] if isinstance(token_aud, str) else token_aud
        wanted = audiences or self.api_audiences
        matched = [a for a in wanted if a in token_aud]
        if not matched:
            return self.denied(f"invalid bearer token, token audiences {json.dumps(token_aud)} "
                               f"is invalid for the target audiences {json.dumps(wanted)}"), None
        k8s = claims.get("kubernetes.io", {})
        namespace = k8s.get("namespace")
        sa = k8s.get("serviceaccount", {})
        if not namespace or not sa.get("name"):
            return self.denied("invalid bearer token, token lacks kubernetes.io claims"), None
        username = f"system:serviceaccount:{namespace}:{sa['name']}"
        if claims.get("sub") != username:
            return self.denied("invalid bearer token, sub does not match the service account"), None
        if self.rejecting():
            return self.denied("invalid bearer token, service account token has been invalidated"), username
        return {
            "authenticated": True,
            "audiences": matched,
            "user": {
                "username": username,
                "uid": sa.get("uid", ""),
                "groups": ["system:serviceaccounts", f"system:serviceaccounts:{namespace}",
                           "system:authenticated"],
            },
        }, username

    @staticmethod
    def denied(error):
        return {"authenticated": False, "error": error}

    def log(self, entry):
        with self.log_lock, open(self.log_path, "a") as f:
            f.write(json.dumps(entry) + "\n")


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 30  # a stuck client must not pin a thread forever
    server_version = "tokenreview-standin"

    def setup(self):
        # The TLS handshake runs here, in the connection's thread, so one slow
        # client cannot stall accept() for everyone else.
        self.request.do_handshake()
        super().setup()

    def send_json(self, code, obj):
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def send_status(self, code, reason, message):
        self.send_json(code, {"kind": "Status", "apiVersion": "v1", "metadata": {},
                              "status": "Failure", "message": message, "reason": reason,
                              "code": code})

    def do_GET(self):
        # Same health endpoints as the apiserver; used for readiness polling.
        if self.path in ("/readyz", "/livez", "/healthz"):
            body = b"ok"
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        else:
            self.send_status(404, "NotFound", "the server could not find the requested resource")

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        if self.path.split("?")[0] != REVIEW_PATH:
            self.send_status(404, "NotFound", "the server could not find the requested resource")
            return
        try:
            review = json.loads(raw)
            spec = review.get("spec") or {}
        except (json.JSONDecodeError, AttributeError):
            self.send_status(400, "BadRequest", "the body of the request was not a TokenReview")
            return
        token = spec.get("token") or ""
        audiences = spec.get("audiences") or []
        if not token:
            self.send_status(400, "BadRequest", "token is required for TokenReview in authentication")
            return
        reviewer: Reviewer = self.server.reviewer
        status, username = reviewer.authenticate(token, audiences)
        reviewer.log({
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "token_sha256": hashlib.sha256(token.encode()).hexdigest()[:16],
            "username": username,
            "audiences": audiences,
            "caller_authorization": "Authorization" in self.headers,
            "authenticated": status["authenticated"],
            "error": status.get("error"),
        })
        self.send_json(201, {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
                             "metadata": {"creationTimestamp": None},
                             "spec": spec, "status": status})

    def log_message(self, fmt, *args):
        pass  # the review log above is the useful record; access lines are noise


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(self, addr, ssl_ctx, reviewer):
        super().__init__(addr, Handler)
        self.ssl_ctx = ssl_ctx
        self.reviewer = reviewer

    def get_request(self):
        sock, addr = self.socket.accept()
        # The handler writes the head and the body separately; with Nagle on,
        # the body waits for the client's delayed ACK (40 ms per review).
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return self.ssl_ctx.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), addr


def main():
    p = argparse.ArgumentParser(description="TokenReview stand-in")
    p.add_argument("--listen", default="127.0.0.1:0", help="HOST:PORT")
    p.add_argument("--cert", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--sa-pubkey", required=True, help="PEM public key of the SA token signer")
    p.add_argument("--issuer", default="https://kubernetes.default.svc.cluster.local")
    p.add_argument("--api-audience", action="append",
                   help="audiences used when a review names none (default: the issuer)")
    p.add_argument("--control", required=True, help="file; containing `reject` fails every review")
    p.add_argument("--log", required=True, help="JSON-lines review log")
    a = p.parse_args()

    with open(a.sa_pubkey, "rb") as f:
        public_key = serialization.load_pem_public_key(f.read())
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(a.cert, a.key)
    host, _, port = a.listen.rpartition(":")
    reviewer = Reviewer(public_key, a.issuer, a.api_audience or [a.issuer], a.control, a.log)
    Server((host, int(port)), ctx, reviewer).serve_forever()


if __name__ == "__main__":
    main()
