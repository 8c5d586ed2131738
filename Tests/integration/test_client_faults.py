"""Resolution under load and faults: 100 distinct paths, request counts, a
real OpenBao rate-limit quota, and the fault proxy's 503s, blackholes,
resets, garbage and HTML, each classified per the spec."""
import resource
import time

import pytest

from client_support import assert_fails_closed, run_marked
from conftest import bao_api


def via_fault(bw, **extra):
    """Direct route through the fault proxy (TLS, OpenBao's certificate)."""
    return bw.base_env(BAOWRAP_ADDR=bw.h["FAULT_ADDR"], **extra)


def many(n, paths=None):
    """--secret flags for P000.. reading secret/many/pNNN (on `paths` distinct paths)."""
    args = []
    for i in range(n):
        args += ["--secret", f"P{i:03d}=secret/many/p{i % (paths or n):03d}#value"]
    return args


def test_hundred_distinct_paths_resolve_correctly(bw, expected, fault):
    r, child = bw.child_env(many(100), env=via_fault(bw))
    assert r.returncode == 0, r
    for i in range(100):
        assert child[f"P{i:03d}".encode()] == expected[f"secret/many/p{i:03d}#value"].encode()
    reads = [q["path"] for q in fault.requests() if q["path"].startswith("/v1/secret/")]
    assert sorted(reads) == [f"/v1/secret/data/many/p{i:03d}" for i in range(100)]


def test_distinct_paths_are_read_concurrently(bw, fault):
    # One path never answers. Read one after another, the run would stall
    # on it; read concurrently, every other path is still fetched.
    fault.mode("blackhole", path="/v1/secret/data/many/p000")
    assert_fails_closed(bw, [*many(100), "--timeout", "3s"], {"P000": "timeout"}, env=via_fault(bw))
    reads = {q["path"] for q in fault.requests() if q["path"].startswith("/v1/secret/")}
    assert reads == {f"/v1/secret/data/many/p{i:03d}" for i in range(100)}


def test_100_secrets_on_10_paths_take_13_requests(bw, fault):
    r, child = bw.child_env(many(100, paths=10), env=via_fault(bw))
    assert r.returncode == 0, r
    assert sum(1 for i in range(100) if f"P{i:03d}".encode() in child) == 100
    sent = [(q["method"], q["path"]) for q in fault.requests()]
    assert sent[0] == ("POST", "/v1/auth/kubernetes/login")
    # One mount lookup and the reads, concurrently, in any order.
    assert sorted(sent[1:-1]) == [("GET", f"/v1/secret/data/many/p{i:03d}") for i in range(10)] + \
        [("GET", "/v1/sys/internal/ui/mounts/secret/many/p000")]
    assert sent[-1] == ("POST", "/v1/auth/token/revoke-self")


def test_reads_go_out_while_the_mount_lookup_is_pending(bw, fault):
    # The lookup never answers; the read, guessed as KV v2, is sent anyway.
    fault.mode("blackhole", path="/v1/sys/internal/ui/mounts/")
    assert_fails_closed(bw, ["--secret", "DB=secret/app/db#password", "--timeout", "2s"], {"DB": "timeout"},
                        env=via_fault(bw))
    assert "/v1/secret/data/app/db" in [q["path"] for q in fault.requests()]


def test_kv1_location_is_read_again_after_the_lookup(bw, expected, fault):
    # The early v2 guess at kv1/data/... is refused and thrown away; the
    # lookup says KV v1 and the value comes from the v1 read.
    r, child = bw.child_env(["--secret", "API=kv1/app/api#token"], env=via_fault(bw))
    assert r.returncode == 0, r
    assert child[b"API"] == expected["kv1/app/api#token"].encode()
    reads = [(q["path"], q["status"]) for q in fault.requests() if not q["path"].startswith("/v1/auth/")]
    assert sorted(reads[:2]) == [("/v1/kv1/data/app/api", 403), ("/v1/sys/internal/ui/mounts/kv1/app/api", 200)]
    assert reads[2:] == [("/v1/kv1/app/api", 200)]


@pytest.fixture
def quota(harness):
    """A real OpenBao rate-limit quota on secret/data/many/, removed after."""
    made = []

    def make(block_interval):
        body = {"rate": 1, "interval": "1s", "block_interval": block_interval, "path": "secret/data/many/*"}
        status, answer = bao_api(harness, "POST", "sys/quotas/rate-limit/baowrap-test", body)
        assert status in (200, 204), answer
        made.append(1)

    yield make
    if made:
        bao_api(harness, "DELETE", "sys/quotas/rate-limit/baowrap-test")


def test_rate_limit_quota_429_then_success_within_timeout(bw, expected, fault, quota):
    quota("2s")
    r, child = bw.child_env([*many(3), "--timeout", "20s"], env=via_fault(bw))
    assert r.returncode == 0, r
    for i in range(3):
        assert child[f"P{i:03d}".encode()] == expected[f"secret/many/p{i:03d}#value"].encode()
    assert 429 in [q["status"] for q in fault.requests()], "the quota never answered 429"


def test_rate_limit_beyond_timeout_is_rate_limited(bw, quota):
    quota("60s")
    r, started = run_marked(bw, [*many(3), "--timeout", "2s"])
    assert r.returncode == 125 and not started, r
    # The three reads race; the quota lets whichever comes first through.
    errors = r.errors()
    assert len(errors) == 2 and {e["class"] for e in errors} == {"rate_limited"}, r
    assert {e["var"] for e in errors} < {"P000", "P001", "P002"}
    assert all("HTTP 429" in e["msg"] for e in errors)
    assert "secret/data/many" not in r.stderr.decode(), "OpenBao's message quotes the path; logs hash it"


def test_fault_503_then_success(bw, expected, fault):
    fault.mode("status", status=503, count=2, path="/v1/secret/")
    r, child = bw.child_env(["--secret", "DB=secret/app/db#password"], env=via_fault(bw))
    assert r.returncode == 0, r
    assert child[b"DB"] == expected["secret/app/db#password"].encode()
    reads = [q["status"] for q in fault.requests() if q["path"] == "/v1/secret/data/app/db"]
    assert reads == [503, 503, 200]


def test_fault_503_beyond_timeout_is_sealed(bw, fault):
    fault.mode("status", status=503, path="/v1/secret/")
    r = assert_fails_closed(bw, ["--secret", "DB=secret/app/db#password", "--timeout", "2s"], {"DB": "sealed"},
                            env=via_fault(bw))
    assert "attempts within --timeout" in r.errors()[0]["msg"]


def test_blackhole_is_timeout_within_the_deadline(bw, fault):
    fault.mode("blackhole")
    start = time.monotonic()
    assert_fails_closed(bw, ["--secret", "DB=secret/app/db#password", "--secret", "API=kv1/app/api#token",
                             "--timeout", "2s"], {"DB": "timeout", "API": "timeout"}, env=via_fault(bw))
    assert time.monotonic() - start < 3.0, "--timeout 2s must hold within a second"


def test_reset_mid_body_is_retried(bw, expected, fault):
    fault.mode("reset", count=1, path="/v1/secret/data/app/db")
    r, child = bw.child_env(["--secret", "DB=secret/app/db#password"], env=via_fault(bw))
    assert r.returncode == 0, r
    assert child[b"DB"] == expected["secret/app/db#password"].encode()
    assert [q["mode"] for q in fault.requests() if q["path"] == "/v1/secret/data/app/db"] == ["reset", "pass"]


def test_garbage_8mib_is_bad_response(bw, fault):
    fault.mode("garbage", path="/v1/secret/data/app/db")
    r = assert_fails_closed(bw, ["--secret", "DB=secret/app/db#password", "--secret", "API=kv1/app/api#token"],
                            {"DB": "bad_response"}, env=via_fault(bw))
    assert "larger than 4 MiB" in r.errors()[0]["msg"]


def test_garbage_on_login_is_bad_response_for_every_variable(bw, fault):
    fault.mode("garbage", path="/v1/auth/")
    assert_fails_closed(bw, ["--secret", "DB=secret/app/db#password", "--secret", "API=kv1/app/api#token"],
                        {"DB": "bad_response", "API": "bad_response"}, env=via_fault(bw))


def test_html_200_is_bad_response(bw, fault):
    fault.mode("html", status=200, path="/v1/secret/")
    r = assert_fails_closed(bw, ["--secret", "DB=secret/app/db#password"], {"DB": "bad_response"}, env=via_fault(bw))
    assert "not OpenBao JSON" in r.errors()[0]["msg"]


def test_html_403_from_a_proxy_is_no_policy_verdict(bw, fault):
    fault.mode("html", status=403, path="/v1/secret/")
    assert_fails_closed(bw, ["--secret", "DB=secret/app/db#password"], {"DB": "bad_response"}, env=via_fault(bw))


def test_empty_502_beyond_timeout_is_connect(bw, fault):
    fault.mode("empty", status=502)
    r = assert_fails_closed(bw, ["--secret", "DB=secret/app/db#password", "--timeout", "2s"], {"DB": "connect"},
                            env=via_fault(bw))
    assert "HTTP 502 with empty body" in r.errors()[0]["msg"]


def test_mount_lookup_refused_falls_back_to_probing_v2_then_v1(bw, expected, fault):
    # Narrow policies may refuse sys/internal/ui/mounts; the paths are then tried as v2, then as v1.
    fault.mode("status", status=403, path="/v1/sys/internal/ui/mounts/")
    r, child = bw.child_env(["--secret", "DB=secret/app/db#password", "--secret", "API=kv1/app/api#token"],
                            env=via_fault(bw))
    assert r.returncode == 0, r
    assert child[b"DB"] == expected["secret/app/db#password"].encode()
    assert child[b"API"] == expected["kv1/app/api#token"].encode()
    reads = [(q["path"], q["status"]) for q in fault.requests() if not q["path"].startswith(("/v1/sys/", "/v1/auth/"))]
    assert sorted(reads) == [("/v1/kv1/app/api", 200), ("/v1/kv1/data/app/api", 403), ("/v1/secret/data/app/db", 200)]


def test_revocation_failure_is_only_a_debug_line(bw, fault):
    fault.mode("status", status=400, path="/v1/auth/token/revoke-self")
    r, child = bw.child_env(["--log-level", "debug", "--secret", "DB=secret/app/db#password"], env=via_fault(bw))
    assert r.returncode == 0 and child, r
    assert r.errors() == []
    assert [l["level"] for l in r.logs if l["event"] == "revoke_failed"] == ["debug"]


def test_one_secret_written_both_ways_is_read_once(bw, expected, fault):
    r, child = bw.child_env(["--secret", "A=secret/app/db#password", "--secret", "B=secret/data/app/db#username",
                             "--secret", "C=secret/app/db#username"], env=via_fault(bw))
    assert r.returncode == 0, r
    assert (child[b"A"], child[b"B"], child[b"C"]) == (expected["secret/app/db#password"].encode(), b"appuser", b"appuser")
    assert [q["path"] for q in fault.requests() if q["path"].startswith("/v1/secret/")] == ["/v1/secret/data/app/db"]


def test_a_full_window_of_reads_is_waited_for_without_spinning(bw, fault):
    # 20 reads held for a second: 16 fill the window, 4 wait their turn.
    # Waiting costs no CPU; polling with a zero timeout would burn the second.
    fault.mode("delay", ms=1000, path="/v1/secret/data/many/")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    r, _ = bw.child_env(many(20), env=via_fault(bw))
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    assert r.returncode == 0, r
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    assert cpu < 0.4, f"{cpu:.2f} s of CPU for 2 s of waiting"
