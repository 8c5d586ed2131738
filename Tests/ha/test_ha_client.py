"""What a real HA cluster does to a start, one behaviour at a time: a leader
killed mid-login (307 to the dead node, 500 "active cluster node not
found", TLS closed by a load balancer with no server), a sealed node that
nginx stream keeps routing to, jwt auth's 400 for a wrong audience or
subject, and a standby a heartbeat behind the active node."""
import re
import time

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


def start_wrapped(bw, env, args=SECRET_ARGS):
    """Starts baowrap in the background; its command writes its environment
    to a file. Returns the running wrapper and a reader for that file."""
    out = bw.tmp / f"child-env-{time.time_ns()}"
    running = bw.start([*args, "--", "sh", "-c", f'env -0 > "{out}"'], env=env)

    def child():
        entries = out.read_bytes().split(b"\0") if out.exists() else []
        return dict(e.split(b"=", 1) for e in entries if b"=" in e)
    return running, child


# An election, held open: with the leader and one standby killed, the
# survivor can elect no leader and answers as standbys do mid-election (307
# to the dead leader, then 500), until a node comes back. A real failover
# (one kill) is what test_ha_load.py runs.

@pytest.mark.parametrize("balancer", ["nginx", "haproxy"])
def test_logins_during_an_election_are_retried_and_never_followed(bw, expected, cluster, balancer):
    dead = cluster.leaderless()
    running, child = start_wrapped(bw, bw.via(balancer))
    first = running.wait_for_event("retry")
    assert first.get("status") in FAILOVER_ANSWERS, first
    cluster.start(next(iter(cluster.killed - {dead})))
    r = running.finish()
    assert r.returncode == 0, r
    assert_values(child(), expected)
    for line in retries(r):
        assert line.get("status") in FAILOVER_ANSWERS or line.get("class") in ("connect", "timeout"), line
        # The standby points at the dead leader's own address; going there
        # would bypass the load balancer and be refused.
        if line.get("status") == 307:
            assert f"redirect to {cluster.addr(dead)}/v1/" in line["msg"] and "not followed" in line["msg"], line
        assert f"port {cluster.addr(dead).rsplit(':', 1)[1]}" not in line["msg"], line


@pytest.mark.parametrize("balancer", ["nginx", "haproxy"])
def test_an_election_outlasting_the_timeout_is_connect(bw, cluster, balancer):
    cluster.leaderless()
    r = client_support.assert_fails_closed(bw, [*SECRET_ARGS, "--timeout", "1s"], every("connect"), env=bw.via(balancer))
    msg = r.errors()[0]["msg"]
    assert re.search(r"HTTP 307 with empty body, redirect to \S+ not followed"
                     r"|HTTP 500: local node not active but active cluster node not found", msg), msg
    assert re.search(r"still failing after \d+ attempts within --timeout", msg), msg


def test_tls_closed_by_a_balancer_without_server_is_retried(bw, expected, cluster):
    # haproxy's active-only frontend has no server while there is no leader:
    # it accepts the connection and closes it during the TLS handshake.
    dead = cluster.leaderless()
    cluster.wait_haproxy("bao_active", dead, "DOWN")
    running, child = start_wrapped(bw, bw.via("haproxy_active"))
    first = running.wait_for_event("retry")
    assert first.get("class") == "connect" and "SSL_ERROR_SYSCALL" in first["msg"], first
    cluster.start(next(iter(cluster.killed - {dead})))
    r = running.finish()
    assert r.returncode == 0, r
    assert_values(child(), expected)
    assert {line.get("class") for line in retries(r)} <= {"connect", "timeout"}, r


def test_tls_closed_until_the_timeout_is_connect_not_tls(bw, cluster):
    dead = cluster.leaderless()
    cluster.wait_haproxy("bao_active", dead, "DOWN")
    r = client_support.assert_fails_closed(bw, [*SECRET_ARGS, "--timeout", "1s"], every("connect"),
                                           env=bw.via("haproxy_active"))
    assert "SSL_ERROR_SYSCALL" in r.errors()[0]["msg"], r


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


def test_haproxy_health_check_keeps_a_sealed_node_out(bw, expected, cluster):
    sealed = cluster.standby()
    cluster.seal(sealed)
    # The cluster fixture left every node up in haproxy's view.
    cluster.wait_haproxy("bao_unsealed", sealed, "DOWN")
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
