"""--watch against the real harness: a new secret version restarts, signals
or ends the workload; the token is renewed, or replaced by a login with the
JWT file read again; a failing OpenBao never touches the running workload;
pinned versions are left alone; the workload's own exit wins any race with
a restart. Watch intervals are short (300 ms) to keep the suite fast; every
wait is a poll whose bound only catches hangs."""
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import TOKEN_SHAPE, bao_api, canary_forms, jwt_canaries
from supervised import log_lines, read_lines, wait_for
from test_hygiene_memory import (jwt_needles, recorder, scan, secret_mappings, start_sleeping,  # noqa: F401  (recorder is a fixture)
                                 value_needles)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "harness"))
import mint_jwt  # noqa: E402

PROBE = str(Path(__file__).with_name("supervisor_probe.py"))
WATCH = ["--watch", "300ms"]


def new_value(tag="") -> str:
    return f"watch-{tag}-{os.urandom(12).hex()}"


class Secrets:
    """Paths of this test's own (under the policy's secret/app/ and
    kv1/app/), written through the admin API."""

    def __init__(self, harness):
        self.h = harness
        self.values = []

    def path(self, mount="secret"):
        return f"{mount}/app/watch-{os.urandom(6).hex()}"

    def put(self, path, value) -> int:
        self.values.append(value)
        mount, rest = path.split("/", 1)
        if mount == "kv1":
            status, body = bao_api(self.h, "POST", path, {"value": value})
            assert status == 204, body
            return 0
        status, body = bao_api(self.h, "POST", f"{mount}/data/{rest}", {"data": {"value": value}})
        assert status == 200, body
        return body["data"]["version"]


@pytest.fixture
def secrets(harness):
    return Secrets(harness)


def start(bw, secrets, args, child, env=None, **popen):
    """baowrap --watch 300ms ARGS -- CHILD, with the test's own values added
    to the canaries; returns once the child runs."""
    run = start_sleeping(bw, [*WATCH, *args], env or bw.base_env(), child=child, **popen)
    run.canaries |= canary_forms(secrets.values)
    return run


def events(run, name):
    return [l for l in log_lines(run.stderr()) if l.get("event") == name]


def wait_events(run, name, count=1, limit=30):
    """Waits until baowrap logged `name` at least `count` times in all."""
    return wait_for(lambda: len(events(run, name)) >= count or (run.proc.poll() is not None and
                    pytest.fail(f"baowrap exited waiting for {name}: {run.stderr()[-3000:]!r}")),
                    timeout=limit, what=f"{count}x {name}")


def recording_child(log):
    """Appends 'PID VALUE' to LOG at each start, then sleeps until stopped."""
    return ["sh", "-c", f'echo "$$ $W" >> "{log}"; exec sleep 300']


def starts(log, at_least=0):
    """[(pid, value)] of every start so far, once there are `at_least`."""
    if at_least:
        wait_for(lambda: len(read_lines(log)) >= at_least, what=f"{at_least} starts of the child")
    return [tuple(l.split(" ", 1)) for l in read_lines(log)]


def alive(pid) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/status").read_text()
    return "State:\tZ" not in status


def stop(run, code=143):
    run.proc.send_signal(signal.SIGTERM)
    r = run.finish()
    assert r.returncode == code, r
    return r


def test_new_version_restarts_the_child_with_the_new_value(bw, harness, secrets, tmp_path):
    v2, v1 = secrets.path(), secrets.path("kv1")
    secrets.put(v2, new_value("a"))
    secrets.put(v1, new_value("k"))
    log = tmp_path / "starts"
    run = start(bw, secrets, ["--secret", f"W={v2}#value", "--secret", f"K={v1}#value"], recording_child(log))
    try:
        assert run.wait_for_event("watching")["count"] == 2
        (first_pid, first_value), = starts(log, 1)
        changed = new_value("b")
        version = secrets.put(v2, changed)
        assert version == 2
        second_pid, second_value = starts(log, 2)[1]
        assert second_value == changed and second_pid != first_pid
        assert not alive(int(first_pid))
        assert run.child_pids() == [int(second_pid)]
        assert len(events(run, "restarted")) == 1

        # KV v1 has no versions: the watch compares a digest of the data.
        secrets.put(v1, new_value("k2"))
        assert starts(log, 3)[2][1] == changed
    finally:
        r = stop(run)
    assert [e["level"] for e in r.logs if e["event"] == "secret_changed"] == ["info", "info"]


def test_signal_mode_sends_the_signal_once_and_keeps_the_pid(bw, secrets, tmp_path):
    path = secrets.path()
    secrets.put(path, new_value("s"))
    log = tmp_path / "signals"
    run = start(bw, secrets, ["--on-change", "signal:HUP", "--secret", f"W={path}#value"],
                [sys.executable, PROBE, "signals", str(log)], stdin=subprocess.PIPE)
    try:
        wait_for(lambda: any(" ready " in l for l in read_lines(log)), what="probe ready")
        (pid,) = run.child_pids()
        secrets.put(path, new_value("s2"))
        wait_for(lambda: "child HUP" in read_lines(log), what="SIGHUP at the child")
        # Later checks see the same version: no second signal.
        cycles = len(events(run, "watch_cycle"))
        wait_events(run, "watch_cycle", cycles + 3)
        assert [l for l in read_lines(log) if " ready " not in l] == ["child HUP"]
        assert run.child_pids() == [pid]
    finally:
        run.proc.stdin.close()  # EOF ends the probe with status 0
    r = run.finish()
    assert r.returncode == 0, r
    assert len(events(run, "secret_changed")) == 1 and events(run, "restarted") == []


def test_exit_mode_stops_the_child_and_exits_75(bw, secrets, tmp_path):
    path = secrets.path()
    secrets.put(path, new_value("e"))
    log = tmp_path / "starts"
    run = start(bw, secrets, ["--on-change", "exit", "--secret", f"W={path}#value"], recording_child(log))
    (pid, _), = starts(log, 1)
    secrets.put(path, new_value("e2"))
    r = run.finish()
    assert r.returncode == 75, r
    assert not alive(int(pid))
    assert len(starts(log)) == 1


def test_pinned_versions_never_trigger_a_change(bw, secrets, tmp_path):
    pinned, watched = secrets.path(), secrets.path()
    first = new_value("p1")
    secrets.put(pinned, first)
    secrets.put(watched, new_value("w1"))
    out = tmp_path / "env"
    child = ["sh", "-c", f'echo "$$ $A $B" >> "{out}"; exec sleep 300']
    run = start(bw, secrets, ["--secret", f"A={pinned}#value#1", "--secret", f"B={watched}#value"], child)
    try:
        assert run.wait_for_event("watching")["count"] == 1
        secrets.put(pinned, new_value("p2"))
        cycles = len(events(run, "watch_cycle"))
        wait_events(run, "watch_cycle", cycles + 4)
        assert events(run, "secret_changed") == []
        assert len(read_lines(out)) == 1
        # The unpinned one still restarts; the pinned value stays version 1.
        changed = new_value("w2")
        secrets.put(watched, changed)
        wait_for(lambda: len(read_lines(out)) == 2, what="restart")
        assert read_lines(out)[1].split(" ")[1:] == [first, changed]
    finally:
        stop(run)


def test_only_pinned_versions_means_nothing_to_watch(bw, secrets, tmp_path):
    path = secrets.path()
    secrets.put(path, new_value("o"))
    run = start(bw, secrets, ["--secret", f"A={path}#value#1"], ["sleep", "300"])
    try:
        run.wait_for_event("watch_idle")
        run.wait_for_event("wiped")  # the token was revoked as without --watch
        assert events(run, "watching") == []
    finally:
        stop(run)


def write_atomically(path: Path, data: bytes):
    """As the kubelet rotates a projected token: a new file renamed over."""
    tmp = path.with_name(path.name + ".new")
    tmp.write_bytes(data)
    os.chmod(tmp, 0o440)
    os.rename(tmp, path)


@pytest.fixture
def short_lived_role(harness):
    """A role whose tokens live 6 s, so the watch must renew them (at 4 s)."""
    name = f"watch-{os.urandom(4).hex()}"
    status, body = bao_api(harness, "POST", f"auth/{harness['K8S_AUTH_PATH']}/role/{name}", {
        "bound_service_account_names": [harness["K8S_SERVICE_ACCOUNT"]],
        "bound_service_account_namespaces": [harness["K8S_NAMESPACE"]],
        "audience": harness["K8S_AUDIENCE"], "token_policies": ["app-read"],
        "token_ttl": "6s", "token_max_ttl": "1h"})
    assert status == 204, body
    yield name
    bao_api(harness, "DELETE", f"auth/{harness['K8S_AUTH_PATH']}/role/{name}")


@pytest.fixture
def tokenreview(harness):
    control = Path(harness["TOKENREVIEW_CONTROL"])
    yield control
    control.write_text("")


def test_refused_renewal_logs_in_again_with_the_rewritten_jwt_file(bw, harness, secrets, short_lived_role,
                                                                   tokenreview, tmp_path):
    """In 2.7.2 renew-self re-runs the TokenReview: once the SA JWT the token
    was issued for is no longer accepted, renewal fails with 403 and only a
    login with the kubelet's newer JWT helps."""
    jwt_file = tmp_path / "token"
    write_atomically(jwt_file, Path(harness["TOKEN_K8S_VALID"]).read_bytes())
    path = secrets.path()
    secrets.put(path, new_value("t"))
    log = tmp_path / "starts"
    env = bw.base_env(BAOWRAP_ROLE=short_lived_role, BAOWRAP_JWT_FILE=str(jwt_file))
    run = start(bw, secrets, ["--secret", f"W={path}#value"], recording_child(log), env=env)
    try:
        (pid, _), = starts(log, 1)
        wait_events(run, "token_renewed")

        # The old JWT expires and the reviewer rejects what it was issued for.
        write_atomically(jwt_file, Path(harness["TOKEN_K8S_EXPIRED"]).read_bytes())
        tokenreview.write_text("reject\n")
        refused = wait_events(run, "token_renewal_refused") and events(run, "token_renewal_refused")[0]
        assert refused["class"] == "auth_denied"
        failed = wait_events(run, "watch_failed") and events(run, "watch_failed")[0]
        assert failed["class"] == "auth_denied" and "expired" in failed["msg"], failed
        assert events(run, "logged_in") == []

        fresh = mint_jwt.mint(harness["SA_SIGNING_KEY"], mint_jwt.k8s_claims(sa_uid=harness["K8S_APP_SA_UID"])).encode()
        run.canaries |= canary_forms(jwt_canaries(fresh))
        write_atomically(jwt_file, fresh)
        tokenreview.write_text("")
        wait_events(run, "logged_in")
        assert starts(log) == [(pid, starts(log)[0][1])], "the child was touched"
        assert run.child_pids() == [int(pid)]

        # The new token works: a change is still picked up.
        changed = new_value("t2")
        secrets.put(path, changed)
        assert starts(log, 2)[1][1] == changed
    finally:
        stop(run)


@pytest.mark.parametrize("mode", ["status", "blackhole"])
def test_unreachable_openbao_leaves_the_child_alone_and_recovery_is_picked_up(bw, harness, secrets, fault, tmp_path, mode):
    path = secrets.path()
    secrets.put(path, new_value("u"))
    log = tmp_path / "starts"
    env = bw.base_env(BAOWRAP_ADDR=harness["FAULT_ADDR"])
    run = start(bw, secrets, ["--timeout", "1s", "--secret", f"W={path}#value"], recording_child(log), env=env)
    try:
        (pid, _), = starts(log, 1)
        wait_events(run, "watch_cycle")
        fault.mode(mode)
        wait_events(run, "watch_failed", 3)
        changed = new_value("u2")
        secrets.put(path, changed)  # through the admin listener, not the proxy
        failed = events(run, "watch_failed")
        assert [f["failures"] for f in failed[:3]] == [1, 2, 3]
        assert {f["class"] for f in failed} <= {"sealed", "timeout", "connect"}, failed
        assert run.child_pids() == [int(pid)] and len(starts(log)) == 1
        fault.reset()
        assert starts(log, 2)[1][1] == changed
    finally:
        fault.reset()
        stop(run)


def test_watch_fail_after_stops_the_child_and_exits_125(bw, harness, secrets, fault, tmp_path):
    path = secrets.path()
    secrets.put(path, new_value("f"))
    log = tmp_path / "starts"
    env = bw.base_env(BAOWRAP_ADDR=harness["FAULT_ADDR"])
    run = start(bw, secrets, ["--timeout", "1s", "--watch-fail-after", "2", "--secret", f"W={path}#value"],
                recording_child(log), env=env)
    (pid, _), = starts(log, 1)
    fault.mode("status", status=503)
    r = run.finish()
    fault.reset()
    assert r.returncode == 125, r
    assert [e["event"] for e in r.errors()] == ["watch_failed", "watch_gave_up"]
    assert not alive(int(pid))


def test_child_exit_while_a_restart_fetches_wins(bw, harness, secrets, fault, tmp_path):
    """The change is seen, the re-read of the values hangs, and meanwhile the
    child exits on its own: baowrap ends with the child's status at once
    (not at --timeout) and starts nothing."""
    path = secrets.path()
    secrets.put(path, new_value("r"))
    log, done = tmp_path / "starts", tmp_path / "done"
    child = ["sh", "-c", f'echo "$$ $W" >> "{log}"; while [ ! -e "{done}" ]; do sleep 0.05; done; exit 7']
    env = bw.base_env(BAOWRAP_ADDR=harness["FAULT_ADDR"])
    run = start(bw, secrets, ["--timeout", "60s", "--secret", f"W={path}#value"], child, env=env)
    try:
        starts(log, 1)
        wait_events(run, "watch_cycle")
        fault.mode("blackhole", path="/v1/secret/data/")
        secrets.put(path, new_value("r2"))
        wait_events(run, "secret_changed")
        wait_for(lambda: any(q["status"] is None and q["path"].startswith("/v1/secret/data/") for q in fault.requests()),
                 what="the held re-read")
        done.touch()
        r = run.finish(timeout=30)
    finally:
        fault.reset()
    assert r.returncode == 7, r
    assert len(starts(log)) == 1 and events(run, "restarted") == []


def test_stop_signal_during_a_restart_ends_it_with_the_childs_status(bw, secrets, tmp_path):
    """The child ignores the first SIGTERM (the restart's); a SIGTERM to
    baowrap meanwhile is forwarded, the child exits 3 on it, and baowrap
    exits 3 without starting a new child."""
    path = secrets.path()
    secrets.put(path, new_value("d"))
    log, terms = tmp_path / "starts", tmp_path / "terms"
    script = (f'echo "$$ $W" >> "{log}"; n=0; '
              f'trap \'n=$((n+1)); echo "TERM $n" >> "{terms}"; [ $n -ge 2 ] && exit 3\' TERM; '
              'while :; do sleep 0.05; done')
    run = start(bw, secrets, ["--stop-timeout", "60s", "--secret", f"W={path}#value"], ["sh", "-c", script])
    starts(log, 1)
    secrets.put(path, new_value("d2"))
    wait_for(lambda: read_lines(terms) == ["TERM 1"], what="the restart's stop signal at the child")
    run.proc.send_signal(signal.SIGTERM)
    r = run.finish(timeout=30)
    assert r.returncode == 3, r
    assert read_lines(terms) == ["TERM 1", "TERM 2"]
    assert len(starts(log)) == 1 and events(run, "restarted") == []


def processes_running(argv0_and_arg):
    found = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if (d / "cmdline").read_bytes().split(b"\0")[:2] == argv0_and_arg and alive(int(d.name)):
                    found.append(int(d.name))
            except (FileNotFoundError, ProcessLookupError):
                pass
    return found


def test_a_child_ignoring_the_stop_signal_is_killed_with_its_group(bw, secrets, tmp_path):
    """--stop-timeout, then SIGKILL to the child's process group: the old
    generation's background process is gone too (no orphan survives the
    restart)."""
    path = secrets.path()
    secrets.put(path, new_value("k"))
    log = tmp_path / "starts"
    mark = str(3000 + int.from_bytes(os.urandom(2), "big"))
    script = f'echo "$$ $W" >> "{log}"; trap "" TERM; sleep {mark} & while :; do sleep 0.05; done'
    run = start(bw, secrets, ["--stop-timeout", "500ms", "--secret", f"W={path}#value"], ["sh", "-c", script])
    try:
        starts(log, 1)
        (old_sleep,) = wait_for(lambda: processes_running([b"sleep", mark.encode()]), what="the background sleep")
        changed = new_value("k2")
        secrets.put(path, changed)
        assert starts(log, 2)[1][1] == changed
        assert run.wait_for_event("stop_timeout")["level"] == "warn"
        (new_sleep,) = wait_for(lambda: processes_running([b"sleep", mark.encode()]), what="the new background sleep")
        assert new_sleep != old_sleep and not alive(old_sleep)
    finally:
        for pid in run.child_pids():
            os.killpg(pid, signal.SIGKILL)
    r = run.finish()
    assert r.returncode == 137, r


def stop_between_checks(run, attempts=5):
    """SIGSTOPs baowrap right after a check ended, while it waits in the
    supervisor's poll on the signalfd alone; on a loaded machine the stop
    may land in the next check, so that is retried."""
    for _ in range(attempts):
        wait_events(run, "watch_cycle", len(events(run, "watch_cycle")) + 1)
        os.kill(run.pid, signal.SIGSTOP)
        wait_for(lambda: "State:\tT" in Path(f"/proc/{run.pid}/status").read_text(), what="the stop")
        call = Path(f"/proc/{run.pid}/syscall").read_text().split()
        if call[0] == "7" and int(call[2], 16) == 1:
            return
        os.kill(run.pid, signal.SIGCONT)
    raise AssertionError(f"never stopped between checks in {attempts} tries")


def test_between_checks_only_the_token_and_the_versions_stay(bw, harness, expected, secrets, recorder, tmp_path):
    """After a restart, while the watch sleeps, every readable byte of the
    wrapper is searched for the values (old and new), the JWT and the client
    token: none may be found. The token lives in memfd_secret pages, which
    not even root can read; nothing else may be unreadable."""
    v2, v1 = secrets.path(), secrets.path("kv1")
    values = {f"{v2}#value": new_value("m1"), f"{v1}#value": new_value("m2")}
    for ref, v in values.items():
        secrets.put(ref.split("#")[0], v)
    seeded = ["secret/app/db#password", "kv1/app/api#token", "secret/app/big#value", "secret/app/multiline#value"]
    args = ["--watch", "1s", "--secret", f"W={v2}#value", "--secret", f"K={v1}#value"]
    for i, ref in enumerate(seeded):
        args += ["--secret", f"S{i}={ref}"]
    before = len(recorder.tokens)
    run = start(bw, secrets, args, ["sleep", "300"], env=bw.base_env(BAOWRAP_ADDR=recorder.addr))
    try:
        wait_events(run, "watch_cycle", 2)
        values[f"{v2}#value (new)"] = new_value("m3")
        secrets.put(v2, values[f"{v2}#value (new)"])
        wait_events(run, "restarted")
        stop_between_checks(run)
        try:
            tokens = [t.encode() for t in recorder.tokens[before:]]
            assert tokens, "no login seen by the recorder"
            needles = {**value_needles({**expected, **values}, [*seeded, *values]), **jwt_needles(harness["TOKEN_K8S_VALID"]),
                       **{f"client token {i}": t for i, t in enumerate(tokens)}}
            hits, unreadable, scanned = scan(run.pid, needles, shapes=[TOKEN_SHAPE])
            mapped = secret_mappings(run.pid)
        finally:
            os.kill(run.pid, signal.SIGCONT)
        assert scanned > 1_000_000
        assert hits == [], "secret bytes in the wrapper between checks:\n" + "\n".join(hits)
        assert unreadable and all("/secretmem" in u for u in unreadable), unreadable
        # The token's page and nothing else: values are gone after each spawn.
        assert len(mapped) == 1, mapped
        (child,) = run.child_pids()
        child_needles = {k: values[k].encode() for k in (f"{v2}#value (new)", f"{v1}#value")}
        child_hits, _, _ = scan(child, child_needles)
        assert len(child_hits) == 2, "the scan misses values the child holds"
    finally:
        stop(run)


def test_signals_reach_the_child_while_a_check_hangs(bw, harness, secrets, fault, tmp_path):
    path = secrets.path()
    secrets.put(path, new_value("h"))
    log = tmp_path / "signals"
    env = bw.base_env(BAOWRAP_ADDR=harness["FAULT_ADDR"])
    run = start(bw, secrets, ["--timeout", "60s", "--secret", f"W={path}#value"],
                [sys.executable, PROBE, "signals", str(log)], env=env, stdin=subprocess.PIPE)
    try:
        wait_for(lambda: any(" ready " in l for l in read_lines(log)), what="probe ready")
        fault.mode("blackhole")
        wait_for(lambda: any(q["status"] is None for q in fault.requests()), what="a held check")
        for name in ("USR1", "HUP"):
            run.proc.send_signal(getattr(signal, "SIG" + name))
            wait_for(lambda: f"child {name}" in read_lines(log), what=f"{name} at the child during the check")
        assert events(run, "watch_failed") == []  # the check is still waiting
    finally:
        fault.reset()
        run.proc.stdin.close()
    assert run.finish().returncode == 0
