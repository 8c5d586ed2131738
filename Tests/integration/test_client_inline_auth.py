"""OpenBao's inline auth: a start that is one read of a `MOUNT/data/PATH`
secret logs in and reads in a single request, mints no token and so revokes
none; anything short of success falls back to a login and the read, which
report failures exactly as without inline auth. Request lists come from the
fault proxy (passing everything through unless told otherwise)."""
from pathlib import Path

from client_support import assert_fails_closed


def via_fault(bw, **extra):
    return bw.base_env(BAOWRAP_ADDR=bw.h["FAULT_ADDR"], **extra)


def sent(fault):
    return [(q["method"], q["path"], q["status"]) for q in fault.requests()]


def test_one_path_in_api_form_is_one_request_and_leaves_no_token(bw, expected, fault):
    r, child = bw.child_env(["--secret", "PW=secret/data/app/db#password", "--secret", "USER=secret/data/app/db#username"],
                            env=via_fault(bw))
    assert r.returncode == 0, r
    assert (child[b"PW"], child[b"USER"]) == (expected["secret/app/db#password"].encode(), b"appuser")
    assert sent(fault) == [("GET", "/v1/secret/data/app/db", 200)]


def test_inline_auth_in_a_namespace(bw, expected, fault):
    r, child = bw.child_env(["--namespace", bw.h["BAO_TEST_NAMESPACE"], "--secret", "PW=secret/data/app/db#password"],
                            env=via_fault(bw))
    assert r.returncode == 0, r
    assert child[b"PW"] == expected["team-a:secret/app/db#password"].encode()
    assert sent(fault) == [("GET", "/v1/secret/data/app/db", 200)]


def test_inline_auth_through_the_broker(bw, harness, expected):
    log = Path(harness["NGINX_ACCESS_LOG"])
    before = len(log.read_text().splitlines())
    r, child = bw.child_env(["--secret", "PW=secret/data/app/db#password"],
                            env=bw.base_env(BAOWRAP_BROKER_ADDR=harness["BROKER_ADDR"], BAOWRAP_CONNECT="broker"))
    assert r.returncode == 0, r
    assert child[b"PW"] == expected["secret/app/db#password"].encode()
    lines = log.read_text().splitlines()[before:]
    assert len(lines) == 1 and "GET /openbao/v1/secret/data/app/db " in lines[0], lines


def test_a_logical_path_or_two_paths_or_a_watch_log_in(bw, fault):
    for args in (["--secret", "PW=secret/app/db#password"],
                 ["--secret", "PW=secret/data/app/db#password", "--secret", "V=secret/data/app/versioned#value"],
                 ["--secret", "PW=secret/data/app/db#password", "--secret", "OLD=secret/data/app/db#password#1"],
                 ["--watch", "1m", "--secret", "PW=secret/data/app/db#password"]):
        fault.reset()
        r, _ = bw.child_env(args, env=via_fault(bw))
        assert r.returncode == 0, r
        assert sent(fault)[0] == ("POST", "/v1/auth/kubernetes/login", 200), args


def test_refused_inline_read_is_diagnosed_after_a_login(bw, fault):
    r = assert_fails_closed(bw, ["--secret", "X=secret/data/forbidden/x#value"], {"X": "permission_denied"},
                            env=via_fault(bw))
    assert "MOUNT/data/PATH" in r.errors()[0]["msg"], "the classic hint about the policy"
    assert sent(fault) == [("GET", "/v1/secret/data/forbidden/x", 403), ("POST", "/v1/auth/kubernetes/login", 200),
                           ("GET", "/v1/secret/data/forbidden/x", 403), ("POST", "/v1/auth/token/revoke-self", 204)]


def test_refused_inline_login_is_diagnosed_by_the_login(bw, fault):
    r = assert_fails_closed(bw, ["--role", "other", "--secret", "PW=secret/data/app/db#password"], {"PW": "auth_denied"},
                            env=via_fault(bw))
    assert "role other" in r.errors()[0]["msg"]
    assert [q[:2] for q in sent(fault)] == [("GET", "/v1/secret/data/app/db"), ("POST", "/v1/auth/kubernetes/login")]


def test_inline_request_is_not_retried_the_login_path_is(bw, expected, fault):
    fault.mode("status", status=503, count=2, path="/v1/secret/")
    r, child = bw.child_env(["--secret", "PW=secret/data/app/db#password"], env=via_fault(bw))
    assert r.returncode == 0, r
    assert child[b"PW"] == expected["secret/app/db#password"].encode()
    assert sent(fault) == [("GET", "/v1/secret/data/app/db", 503), ("POST", "/v1/auth/kubernetes/login", 200),
                           ("GET", "/v1/secret/data/app/db", 503), ("GET", "/v1/secret/data/app/db", 200),
                           ("POST", "/v1/auth/token/revoke-self", 204)]
