"""The supervisor around a real fetch (harness): signals that arrive while
baowrap is still talking to OpenBao, the order of the child's environment
once secrets are injected, an environment too large for execve, and fds
left over from the fetch."""
import json
import os
import resource
import signal
import subprocess
import sys

import pytest

from supervised import PROBE, wait_for

DB = "secret/app/db#password"
API = "kv1/app/api#token"


def start(bw, args, env):
    return subprocess.Popen([bw.binary, *args], env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def finished(bw, p, timeout):
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        p.communicate()
        raise
    bw.assert_no_secret(out + err, err)
    return p.returncode, err


def via_fault_proxy(bw, **extra):
    # The timeout is far above the test's bounds: exiting within them shows
    # the signal, not the deadline, ended the fetch.
    return bw.base_env(BAOWRAP_ADDR=bw.h["FAULT_ADDR"], BAOWRAP_TIMEOUT="120s", **extra)


@pytest.mark.parametrize("sig", [signal.SIGHUP, signal.SIGINT, signal.SIGQUIT, signal.SIGTERM])
def test_stop_signal_during_fetch_exits_without_starting(bw, fault, tmp_path, sig):
    fault.mode("blackhole")
    marker = tmp_path / "started"
    p = start(bw, ["--secret", f"DB_PASSWORD={DB}", "--", "touch", str(marker)], via_fault_proxy(bw))
    wait_for(fault.requests, what="baowrap's first request to reach the proxy")
    p.send_signal(sig)
    rc, err = finished(bw, p, timeout=30)
    assert rc == 128 + sig, err
    assert not marker.exists()
    errors = [json.loads(l) for l in err.splitlines() if l.startswith(b"{") and b'"error"' in l]
    assert [e["class"] for e in errors] == ["interrupted"], err


def test_other_signal_during_fetch_is_delivered_once_the_child_runs(bw, fault, tmp_path):
    """USR1 does not stop the fetch; it is held and forwarded to the child.
    `sleep` keeps USR1 at its default action, so the child dies of it."""
    fault.mode("delay", ms=1500, path="/v1/secret/")
    p = start(bw, ["--secret", f"DB_PASSWORD={DB}", "--", "sleep", "60"], via_fault_proxy(bw))
    wait_for(lambda: any("/v1/secret/" in r["path"] for r in fault.requests()), what="the delayed read")
    p.send_signal(signal.SIGUSR1)
    rc, err = finished(bw, p, timeout=30)
    assert rc == 128 + signal.SIGUSR1, err


def test_injected_variables_replace_in_place_and_append_in_order(bw, expected, tmp_path):
    out = tmp_path / "environ"
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "FIRST": "1",
        "DB_PASSWORD": "inherited value, to be replaced",
        "BAOWRAP_ADDR": bw.h["BAO_TLS_ADDR"],
        "MIDDLE": "2",
        "FROM_REF": f"bao:{API}",
        "BAOWRAP_CACERT": bw.h["CA_CERT"],
        "BAOWRAP_ROLE": bw.h["K8S_ROLE"],
        "BAOWRAP_JWT_FILE": bw.h["TOKEN_K8S_VALID"],
        "LAST": "3",
    }
    r = bw.run(["--secret", f"DB_PASSWORD={DB}", "--secret", f"NEW_B={API}", "--secret", f"NEW_A={DB}",
                "--", "cp", "/proc/self/environ", str(out)], env=env)
    assert r.returncode == 0, r
    entries = out.read_bytes().split(b"\0")[:-1]
    assert entries == [
        b"PATH=/usr/local/bin:/usr/bin:/bin",
        b"FIRST=1",
        b"DB_PASSWORD=" + expected[DB].encode(),
        b"MIDDLE=2",
        b"FROM_REF=" + expected[API].encode(),
        b"LAST=3",
        b"NEW_B=" + expected[API].encode(),
        b"NEW_A=" + expected[DB].encode(),
    ]


def eight_mib_stack():
    # The kernel allows argv+environ of a quarter of the stack limit.
    resource.setrlimit(resource.RLIMIT_STACK, (8 << 20, 8 << 20))


def test_environment_too_large_for_exec_is_one_clear_error(bw, tmp_path):
    """40 copies of the 64 KiB secret are 2.6 MB, over the 2 MiB limit."""
    marker = tmp_path / "started"
    secrets = [a for i in range(40) for a in ("--secret", f"BIG_{i}=secret/app/big#value")]
    r = bw.run([*secrets, "--", "touch", str(marker)], preexec_fn=eight_mib_stack)
    assert r.returncode == 125, r
    assert not marker.exists()
    assert len(r.errors()) == 1 and len(r.stderr.splitlines()) == len(r.logs), r
    assert r.error_classes() == ["system"], r
    msg = r.errors()[0]["msg"]
    assert "too large" in msg and "environment" in msg, msg


def test_child_gets_only_fds_0_1_2_after_a_fetch(bw, tmp_path):
    out = tmp_path / "state.json"
    r = bw.run(["--secret", f"DB_PASSWORD={DB}", "--", sys.executable, PROBE, "state", str(out)])
    assert r.returncode == 0, r
    assert json.loads(out.read_text())["fds"] == [0, 1, 2]


def test_child_signal_state_is_clean_after_a_fetch(bw):
    """libcurl's resolver threads and the fetch's own signal handling leave
    nothing behind in the child."""
    r = bw.run(["--secret", f"DB_PASSWORD={DB}", "--", "grep", "-E", "^Sig(Blk|Ign):", "/proc/self/status"])
    assert r.returncode == 0, r
    assert r.stdout.split() == [b"SigBlk:", b"0000000000000000", b"SigIgn:", b"0000000000000000"]


def status_kib(pid, field):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} for {pid}")


def test_start_up_memory_is_given_back_while_supervising(bw):
    # The start touches megabytes of code (TLS, JSON, libcurl); the wait for
    # the child needs little of it, and freed heap goes back too.
    secrets = [a for i in range(10) for a in ("--secret", f"S{i}=secret/many/p{i:03d}#value")]
    run = bw.start(["--log-level", "debug", *secrets, "--", "sleep", "30"])
    try:
        run.wait_for_event("started")
        wait_for(lambda: status_kib(run.pid, "VmRSS") <= status_kib(run.pid, "VmHWM") - 2560,
                 what="resident memory 2.5 MiB below its peak")
    finally:
        run.proc.kill()
        run.finish()
