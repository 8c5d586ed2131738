"""Profiles, local JWT diagnostics, memory-lock policy and log hygiene, each
checked by the exact log line it produces. Refusals must happen before any
network call: they point baowrap at a listener that counts connections, or
at the fault proxy, whose request list must stay empty."""
import re
import shutil
import socket
import sys
import threading
import time
from pathlib import Path

import pytest

from conftest import bao_api
from test_hygiene_memory import memlock_limit, without_mlock

HINT = "allowed only with --profile development (BAOWRAP_PROFILE=development)"
CLAIM_HINT = "check the projected token's audience and expiry, or the --expect-* settings"


class CountingListener:
    """A TCP port that accepts and counts connections and never answers."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self.conns = []
        threading.Thread(target=self.loop, daemon=True).start()

    def loop(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            self.conns.append(c)

    def close(self):
        self.sock.close()
        for c in self.conns:
            c.close()


@pytest.fixture
def listener():
    listener = CountingListener()
    yield listener
    listener.close()


def lines(r):
    """Log lines without the timestamp, for exact comparison."""
    return [{k: v for k, v in l.items() if k != "ts"} for l in r.logs]


def failed(msg, cls="config", var=None):
    """An error line; one that stops the login names each variable it fails."""
    if var:
        return {"level": "error", "event": "failed", "msg": f"{var}: {msg}", "class": cls, "var": var}
    return {"level": "error", "event": "failed", "msg": msg, "class": cls}


def security_risk(*relaxations):
    return {"level": "warn", "event": "security_risk", "msg": "development profile: hardened rules relaxed",
            "relaxations": [*relaxations, "jwt_checks_warn_only", "raw_paths_in_logs"]}


SECRET = ["--secret", "DB_PASSWORD=secret/app/db#password"]


def world_writable_copy(src, dest: Path) -> str:
    shutil.copy(src, dest)
    dest.chmod(0o666)
    return str(dest)


# MARK: hardened refusals


@pytest.mark.parametrize("case", ["http_address", "http_broker", "tls_skip_verify", "static_token", "world_writable_ca"])
def test_hardened_refuses_before_any_connection(bw, harness, listener, tmp_path, case):
    https = f"https://127.0.0.1:{listener.port}"
    http = f"http://127.0.0.1:{listener.port}"
    env, args = bw.base_env(BAOWRAP_ADDR=https), []
    if case == "http_address":
        env["BAOWRAP_ADDR"] = http
        want = failed(f"http:// address refused by the hardened profile (hint: {HINT})")
    elif case == "http_broker":
        env["BAOWRAP_BROKER_ADDR"] = http + "/openbao"
        want = failed(f"http:// broker refused by the hardened profile (hint: {HINT})")
    elif case == "tls_skip_verify":
        args = ["--tls-skip-verify"]
        want = failed(f"--tls-skip-verify refused by the hardened profile (hint: {HINT})")
    elif case == "static_token":
        env["BAOWRAP_TOKEN"] = "s.0123456789abcdefghijklmn"
        want = failed(f"BAOWRAP_TOKEN (static token) refused by the hardened profile (hint: {HINT}; use a JWT login)")
    else:
        ca = world_writable_copy(harness["CA_CERT"], tmp_path / "ca.pem")
        env["BAOWRAP_CACERT"] = ca
        want = failed(f"CA file {ca} is world-writable; anyone could swap the trust anchor (hint: chmod o-w {ca})")
    r, child = bw.child_env([*args, *SECRET], env=env)
    assert r.returncode == 125, r
    assert lines(r) == [want]
    assert child == {}
    assert listener.accepted == 0


def test_hardened_refuses_world_writable_jwt_before_any_request(bw, harness, fault, tmp_path):
    jwt = world_writable_copy(harness["TOKEN_K8S_VALID"], tmp_path / "token")
    r, child = bw.child_env(SECRET, env=bw.base_env(BAOWRAP_ADDR=harness["FAULT_ADDR"], BAOWRAP_JWT_FILE=jwt))
    assert r.returncode == 125, r
    assert lines(r) == [failed(f"JWT file {jwt} is world-writable; anyone could replace the identity (hint: chmod o-w {jwt})",
                               var="DB_PASSWORD")]
    assert child == {} and fault.requests() == []


def test_hardened_run_is_quiet(bw):
    r, child = bw.child_env(SECRET)
    assert r.returncode == 0, r
    assert [l for l in r.logs if l["level"] != "info"] == []
    assert child[b"DB_PASSWORD"]


# MARK: local JWT diagnostics


def mint_not_yet_valid(harness, tmp_path, nbf_in) -> str:
    sys.path.insert(0, str(Path(harness["MINT_JWT"]).parent))
    import mint_jwt
    claims = mint_jwt.k8s_claims(sa="app", exp_in=nbf_in + 3600)
    claims["nbf"] = claims["iat"] = int(time.time()) + nbf_in
    out = tmp_path / "not-yet-valid.jwt"
    out.write_text(mint_jwt.mint(harness["SA_SIGNING_KEY"], claims))
    out.chmod(0o440)
    return str(out)


CLAIM_CASES = {
    "exp": ({"file": "TOKEN_K8S_EXPIRED"}, [], r"the JWT expired \d+s ago \(exp claim\)"),
    "nbf": ({"nbf_in": 3600}, [], r"the JWT is not valid for another 3[56]\d\ds \(nbf claim\)"),
    "iss": ({}, ["--expect-issuer", "https://issuer.example"],
            re.escape('the JWT\'s iss claim is "https://kubernetes.default.svc.cluster.local", expected "https://issuer.example"')),
    "aud": ({}, ["--expect-audience", "vault"], re.escape('the JWT\'s aud claim is [openbao], expected it to contain "vault"')),
    "sub": ({}, ["--expect-subject", "system:serviceaccount:default:db"],
            re.escape('the JWT\'s sub claim is "system:serviceaccount:default:app", expected "system:serviceaccount:default:db"')),
}


def claim_case(harness, tmp_path, claim):
    how, args, pattern = CLAIM_CASES[claim]
    if "file" in how:
        return harness[how["file"]], args, pattern
    if how:
        return mint_not_yet_valid(harness, tmp_path, how["nbf_in"]), args, pattern
    return harness["TOKEN_K8S_VALID"], args, pattern


@pytest.mark.parametrize("claim", list(CLAIM_CASES))
def test_hardened_reports_claim_before_any_request(bw, harness, fault, tmp_path, claim):
    jwt, args, pattern = claim_case(harness, tmp_path, claim)
    env = bw.base_env(BAOWRAP_ADDR=harness["FAULT_ADDR"], BAOWRAP_JWT_FILE=jwt)
    r, child = bw.child_env([*args, *SECRET], env=env)
    assert r.returncode == 125, r
    (line,) = lines(r)
    assert {k: line[k] for k in ("level", "event", "class", "var")} == \
        {"level": "error", "event": "failed", "class": "auth_denied", "var": "DB_PASSWORD"}
    assert re.fullmatch(re.escape(f"DB_PASSWORD: JWT from {jwt} will be refused: ") + pattern + re.escape(f" (hint: {CLAIM_HINT})"),
                        line["msg"]), line["msg"]
    assert child == {} and fault.requests() == []


def test_hardened_lists_every_mismatched_claim_in_one_line(bw, harness, fault):
    args = ["--expect-issuer", "i", "--expect-audience", "a", "--expect-subject", "s", *SECRET]
    r = bw.run([*args, "--", "true"], env=bw.base_env(BAOWRAP_ADDR=harness["FAULT_ADDR"]))
    assert r.returncode == 125, r
    (line,) = r.errors()
    assert [m.group(1) for m in re.finditer(r"the JWT's (\w+) claim", line["msg"])] == ["iss", "aud", "sub"]
    assert fault.requests() == []


@pytest.mark.parametrize("claim", list(CLAIM_CASES))
def test_development_warns_about_claim_and_logs_in_anyway(bw, harness, fault, tmp_path, claim):
    jwt, args, pattern = claim_case(harness, tmp_path, claim)
    env = bw.base_env(BAOWRAP_ADDR=harness["FAULT_ADDR"], BAOWRAP_JWT_FILE=jwt, BAOWRAP_PROFILE="development")
    r, child = bw.child_env([*args, *SECRET], env=env)
    got = lines(r)
    assert got[0] == security_risk()
    warning = got[1]
    assert {k: warning[k] for k in ("level", "event", "class", "claim")} == \
        {"level": "warn", "event": "jwt_claims", "class": "auth_denied", "claim": claim}
    assert re.fullmatch(pattern + re.escape(" (development profile: logging in anyway)"), warning["msg"]), warning
    # The warning came first; then the login went out.
    assert fault.requests()[0]["path"] == "/v1/auth/kubernetes/login"
    if claim in ("exp", "nbf"):
        # The server does its own check and refuses.
        assert r.returncode == 125 and r.error_classes() == ["auth_denied"], r
    else:
        assert r.returncode == 0, r
        assert child[b"DB_PASSWORD"]


# MARK: development relaxations


def test_development_allows_http_address(bw, harness):
    env = bw.base_env(BAOWRAP_ADDR=harness["BAO_PLAIN_ADDR"], BAOWRAP_PROFILE="development")
    r, child = bw.child_env(SECRET, env=env)
    assert r.returncode == 0, r
    assert [l for l in lines(r) if l["level"] != "info"] == [security_risk("http_address")]


def test_development_allows_tls_skip_verify(bw, harness):
    # The CA below did not sign OpenBao's certificate: only skipping helps.
    env = bw.base_env(BAOWRAP_CACERT=harness["OTHER_CA_CERT"], BAOWRAP_PROFILE="development")
    r, child = bw.child_env(["--tls-skip-verify", *SECRET], env=env)
    assert r.returncode == 0, r
    assert [l for l in lines(r) if l["level"] != "info"] == [security_risk("tls_skip_verify")]
    assert child[b"DB_PASSWORD"]


def test_development_allows_static_token(bw, harness, expected):
    code, body = bao_api(harness, "POST", "auth/token/create", {"policies": ["app-read"], "ttl": "5m"})
    assert code == 200, body
    env = bw.base_env(BAOWRAP_TOKEN=body["auth"]["client_token"], BAOWRAP_PROFILE="development")
    r, child = bw.child_env(SECRET, env=env)
    assert r.returncode == 0, r
    assert [l for l in lines(r) if l["level"] != "info"] == [security_risk("static_token")]
    assert child[b"DB_PASSWORD"] == expected["secret/app/db#password"].encode()
    assert not [k for k in child if k.startswith(b"BAOWRAP_")]


def test_development_allows_world_writable_files(bw, harness, tmp_path):
    env = bw.base_env(BAOWRAP_CACERT=world_writable_copy(harness["CA_CERT"], tmp_path / "ca.pem"),
                      BAOWRAP_JWT_FILE=world_writable_copy(harness["TOKEN_K8S_VALID"], tmp_path / "token"),
                      BAOWRAP_PROFILE="development")
    r, child = bw.child_env(SECRET, env=env)
    assert r.returncode == 0, r
    assert [l for l in lines(r) if l["level"] != "info"] == \
        [security_risk("world_writable_ca_file", "world_writable_jwt_file")]


def test_development_lists_every_relaxation_in_one_line(bw, harness):
    code, body = bao_api(harness, "POST", "auth/token/create", {"policies": ["app-read"], "ttl": "5m"})
    env = bw.base_env(BAOWRAP_ADDR=harness["BAO_PLAIN_ADDR"], BAOWRAP_TOKEN=body["auth"]["client_token"],
                      BAOWRAP_PROFILE="development")
    r, _ = bw.child_env(["--tls-skip-verify", *SECRET], env=env)
    assert r.returncode == 0, r
    assert [l for l in lines(r) if l["event"] == "security_risk"] == \
        [security_risk("http_address", "tls_skip_verify", "static_token")]


# MARK: memory locking


MLOCK_WARNING = {"level": "warn", "event": "mlock_unavailable", "class": "mlock_unavailable",
                 "msg": "secret memory could not be locked (RLIMIT_MEMLOCK); it may be swapped"}


def test_memlock_zero_warns_once_and_continues(bw, expected):
    r, child = bw.child_env(["--secret", "A=secret/app/db#password", "--secret", "B=secret/app/big#value"],
                            preexec_fn=without_mlock)
    assert r.returncode == 0, r
    assert [l for l in lines(r) if l["level"] != "info"] == [MLOCK_WARNING]
    assert child[b"B"] == expected["secret/app/big#value"].encode()


def test_memlock_zero_with_require_mlock_fails_before_any_request(bw, harness, fault):
    r, child = bw.child_env(["--require-mlock", *SECRET], env=bw.base_env(BAOWRAP_ADDR=harness["FAULT_ADDR"]),
                            preexec_fn=without_mlock)
    assert r.returncode == 125, r
    assert lines(r) == [failed("secret memory cannot be locked (RLIMIT_MEMLOCK too small) and --require-mlock is set "
                               "(hint: raise the memlock limit or drop --require-mlock)", cls="system")]
    assert child == {} and fault.requests() == []


def test_a_dozen_paths_lock_within_the_classic_64k_limit(bw, expected):
    """Docker's long-standing default RLIMIT_MEMLOCK is 64 KiB: twelve paths
    read at once still fit, so no warning and --require-mlock passes."""
    refs = [f"secret/many/p{i:03d}#value" for i in range(12)]
    args = ["--require-mlock"] + [a for i, r in enumerate(refs) for a in ("--secret", f"S{i}={r}")]
    r, child = bw.child_env(args, preexec_fn=memlock_limit(64 * 1024))
    assert r.returncode == 0, r
    assert [l for l in r.logs if l["level"] != "info"] == []
    assert child[b"S11"] == expected[refs[11]].encode()


def test_require_mlock_passes_when_memory_locks(bw):
    r, child = bw.child_env(["--require-mlock", *SECRET])
    assert r.returncode == 0, r
    assert child[b"DB_PASSWORD"]


# MARK: logs


def test_paths_are_hashed_unless_asked_for(bw):
    args = ["--secret", "X=secret/app/nothing-here#k"]
    hashed = bw.run([*args, "--", "true"])
    assert hashed.returncode == 125
    (line,) = hashed.errors()
    assert "secret/app/nothing-here" not in hashed.stderr.decode()
    assert re.search(r"secret sha256:[0-9a-f]{12} does not exist", line["msg"]), line
    for extra, env in ((["--log-paths"], bw.base_env()), ([], bw.base_env(BAOWRAP_PROFILE="development"))):
        shown = bw.run([*extra, *args, "--", "true"], env=env)
        assert "secret secret/app/nothing-here does not exist" in shown.errors()[0]["msg"], shown


def test_text_log_format(bw, listener):
    env = bw.base_env(BAOWRAP_ADDR=f"http://127.0.0.1:{listener.port}")
    r = bw.run(["--log-format", "text", *SECRET, "--", "true"], env=env)
    assert r.returncode == 125
    assert r.stderr.decode().splitlines() == \
        [f"baowrap: error failed: http:// address refused by the hardened profile (hint: {HINT}) class=config"]


def test_canary_guard_checks_baowrap_started_without_bw(bw, binary, expected):
    """A test's own subprocess call that runs baowrap is checked as well: a
    child printing a value fails it."""
    import subprocess
    env = bw.base_env()
    with pytest.raises(AssertionError, match="secret leaked"):
        subprocess.run([str(binary), *SECRET, "--", "sh", "-c", 'printf %s "$DB_PASSWORD"'], env=env,
                       capture_output=True, timeout=60)
    plain = subprocess.run([str(binary), *SECRET, "--", "true"], env=env, capture_output=True, timeout=60)
    assert plain.returncode == 0
