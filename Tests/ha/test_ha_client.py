"""What a real HA cluster does to a start, one behaviour at a time: a leader
killed mid-login (307 to the dead node, 500 "active cluster node not
found", TLS closed by a load balancer with no server), a sealed node that
nginx stream keeps routing to, jwt auth's 400 for a wrong audience or
subject, and a standby a heartbeat behind the active node."""
import re
import time
from pathlib import Path

import pytest

from conftest import SECRET_ARGS, SECRETS, assert_values, bao_api, client_support, retries

FAILOVER_ANSWERS = (307, 500)


def every(cls):
    return {name: cls for name in SECRETS}


@pytest.mark.parametrize("balancer", ["nginx", "haproxy", "haproxy_active"])
def test_starts_through_each_balancer(bw, expected, cluster, balancer):
    r, child = bw.child_env(SECRET_ARGS, env=bw.via(balancer))
    assert r.returncode == 0, r
    assert_values(child, expected)


@pytest.mark.parametrize("balancer", ["nginx", "haproxy"])
def test_login_during_failover_is_retried_and_never_followed(bw, expected, cluster, balancer):
    dead = cluster.active()
    cluster.kill(dead)
    r, child = bw.child_env(SECRET_ARGS, env=bw.via(balancer))
    assert r.returncode == 0, r
    assert_values(child, expected)
    seen = retries(r)
    assert any(line.get("status") in FAILOVER_ANSWERS for line in seen), f"the start never met the election: {seen}"
    dead_port = cluster.addr(dead).rsplit(":", 1)[1]
    for line in seen:
        assert line.get("status") in FAILOVER_ANSWERS or line.get("class") in ("connect", "timeout"), line
        # A standby points at the dead leader's own address; going there
        # would bypass the load balancer and be refused.
        if line.get("status") == 307:
            assert f"redirect to {cluster.addr(dead)}/v1/auth/jwt/login not followed" in line["msg"], line
        assert f"port {dead_port}" not in line["msg"], line


@pytest.mark.parametrize("balancer", ["nginx", "haproxy"])
def test_failover_outlasting_the_timeout_is_connect(bw, cluster, balancer):
    # An election takes 2-3 s on the lane (performance_multiplier = 1).
    cluster.kill(cluster.active())
    r = client_support.assert_fails_closed(bw, [*SECRET_ARGS, "--timeout", "1s"], every("connect"), env=bw.via(balancer))
    msg = r.errors()[0]["msg"]
    assert re.search(r"HTTP 307 with empty body, redirect to \S+ not followed"
                     r"|HTTP 500: local node not active but active cluster node not found", msg), msg
    assert re.search(r"still failing after \d+ attempts within --timeout", msg), msg


def test_tls_closed_by_a_balancer_without_server_is_retried(bw, expected, cluster):
    # haproxy's active-only frontend has no server until a new leader passes
    # its health check: it accepts the connection and closes it mid-handshake.
    cluster.kill(cluster.active())
    r, child = bw.child_env(SECRET_ARGS, env=bw.via("haproxy_active"))
    assert r.returncode == 0, r
    assert_values(child, expected)
    seen = retries(r)
    assert any("SSL_ERROR_SYSCALL" in line["msg"] for line in seen), seen
    assert {line.get("class") for line in seen} <= {"connect", "timeout"}, seen


def test_tls_closed_until_the_timeout_is_not_a_tls_error(bw, cluster):
    cluster.kill(cluster.active())
    r, started = client_support.run_marked(bw, [*SECRET_ARGS, "--timeout", "1s"], env=bw.via("haproxy_active"))
    assert r.returncode == 125 and not started, r
    # haproxy either holds the handshake while it retries the dead node
    # (timeout) or closes it (connect); a certificate never failed.
    assert set(r.error_classes()) in ({"connect"}, {"timeout"}), r


def test_sealed_node_behind_nginx_is_retried_on_another_node(bw, expected, cluster):
    cluster.seal(cluster.standby())
    seen = []
    for _ in range(9):
        r, child = bw.child_env(SECRET_ARGS, env=bw.via("nginx"))
        assert r.returncode == 0, r
        assert_values(child, expected)
        seen += retries(r)
    # nginx stream's passive checks never notice a sealed node: TCP and TLS
    # still work. Each 503 was retried on a new connection.
    assert any(line.get("status") == 503 and "Vault is sealed" in line["msg"] for line in seen), seen
    assert {line.get("status") for line in seen} == {503}, seen


def test_haproxy_health_check_keeps_a_sealed_node_out(bw, expected, cluster, lane):
    sealed = cluster.standby()
    log = Path(lane["HA_LOG_DIR"]) / "haproxy.log"
    before = log.stat().st_size
    cluster.seal(sealed)
    down = f"Server bao_unsealed/node{sealed} is DOWN".encode()
    end = time.monotonic() + 20
    while down not in log.read_bytes()[before:]:
        assert time.monotonic() < end, f"haproxy never marked node{sealed} down"
        time.sleep(0.1)
    for _ in range(6):
        r, child = bw.child_env(SECRET_ARGS, env=bw.via("haproxy"))
        assert r.returncode == 0, r
        assert_values(child, expected)
        assert retries(r) == [], r


def test_sealed_node_alone_is_sealed(bw, cluster):
    sealed = cluster.standby()
    cluster.seal(sealed)
    r = client_support.assert_fails_closed(bw, [*SECRET_ARGS, "--timeout", "1s"], every("sealed"),
                                           env=bw.base_env(BAOWRAP_ADDR=cluster.addr(sealed)))
    assert "HTTP 503: Vault is sealed" in r.errors()[0]["msg"], r


@pytest.mark.parametrize("token, reason", [("TOKEN_JWT_WRONG_AUD", "invalid audience"),
                                           ("TOKEN_JWT_WRONG_SUB", "invalid subject")])
def test_jwt_400_for_wrong_claims_is_auth_denied_at_once(bw, lane, token, reason):
    r = client_support.assert_fails_closed(bw, SECRET_ARGS, every("auth_denied"),
                                           env=bw.via("nginx", BAOWRAP_JWT_FILE=lane[token]))
    msg = r.errors()[0]["msg"]
    assert "HTTP 400" in msg and reason in msg, msg
    assert retries(r) == [], r


def test_pinned_version_a_standby_has_not_seen_yet_is_read(bw, lane, cluster):
    # A login is a Raft write, which brings standbys up to date as a side
    # effect; without one in between (a static token here, a watch's
    # re-read in long-running mode) a standby answers a bare 404 for a
    # version written a moment ago.
    active, standby = cluster.active(), cluster.standby()
    env = bw.base_env(BAOWRAP_ADDR=cluster.addr(standby), BAOWRAP_TOKEN=lane["HA_ROOT_TOKEN"],
                      BAOWRAP_PROFILE="development", BAOWRAP_JWT_FILE=None)
    unseen = 0
    for i in range(5):
        value = f"fresh-{i}-{time.time_ns()}"
        written = bao_api(lane, cluster.addr(active), "POST", "secret/data/app/fresh", {"data": {"value": value}})
        version = written["data"]["version"]
        r, child = bw.child_env(["--secret", f"FRESH=secret/app/fresh#value#{version}"], env=env)
        assert r.returncode == 0, r
        assert child[b"FRESH"] == value.encode()
        unseen += sum(1 for line in retries(r) if line.get("status") == 404)
    assert unseen, "the standby was never behind: this test showed nothing"


def test_missing_pinned_version_fails_as_not_found_after_a_bounded_wait(bw, cluster):
    start = time.monotonic()
    r = client_support.assert_fails_closed(bw, ["--secret", "V=secret/app/versioned#value#99"], {"V": "not_found"},
                                           env=bw.via("nginx"))
    assert re.search(r"version 99 of sha256:[0-9a-f]{12} does not exist", r.errors()[0]["msg"]), r
    assert {line.get("status") for line in retries(r)} == {404}, r
    assert time.monotonic() - start < 15, "the wait for an unseen version must stay short (2 s), not --timeout"
