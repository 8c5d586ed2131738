"""baowrap's life with a running child: signal forwarding, terminal
foreground, reaping as subreaper and as PID 1. Waits are polls with
generous bounds that only catch hangs; nothing asserts on speed."""
import fcntl
import json
import os
import pty
import signal
import subprocess
import sys
import termios

import pytest

from supervised import PATH, read_lines, sup, wait_for  # noqa: F401  (sup is a fixture)
from supervisor_probe import FORWARDED


def start_recorder(sup, log, *flags, group=False, **popen):
    p = sup.popen([*flags, "--", *sup.probe("signals", log, *(["--group"] if group else []))], **popen)
    expected = 2 if group else 1
    wait_for(lambda: sum(" ready " in l for l in read_lines(log)) == expected, what="probe ready")
    return p


def deliver_each(p, log, names, who="child"):
    """Sends each signal to baowrap, waiting until `who` recorded it before
    sending the next, so standard signals cannot merge."""
    for name in names:
        p.send_signal(getattr(signal, "SIG" + name))
        wait_for(lambda: f"{who} {name}" in read_lines(log), what=f"{who} to record {name}")


def finish(p):
    """EOF on the probe's stdin (communicate closes it) ends it with status 0."""
    out, err = p.communicate(timeout=30)
    return p.returncode, out, err


def recorded(log, who):
    return [l.split(" ", 1)[1] for l in read_lines(log) if l.startswith(who + " ") and " ready " not in l]


def test_each_signal_reaches_the_child_exactly_once(sup, tmp_path):
    log = tmp_path / "signals.log"
    p = start_recorder(sup, log)
    deliver_each(p, log, FORWARDED)
    rc, _, err = finish(p)
    assert rc == 0, err
    assert recorded(log, "child") == FORWARDED


def test_forwarding_survives_inherited_ignored_dispositions(sup, tmp_path):
    def ignored():
        for s in (signal.SIGTERM, signal.SIGUSR1, signal.SIGHUP):
            signal.signal(s, signal.SIG_IGN)
    log = tmp_path / "signals.log"
    p = start_recorder(sup, log, preexec_fn=ignored)
    deliver_each(p, log, ["TERM", "USR1", "HUP"])
    rc, _, err = finish(p)
    assert rc == 0, err
    assert recorded(log, "child") == ["TERM", "USR1", "HUP"]


def test_signal_group_reaches_the_whole_group(sup, tmp_path):
    log = tmp_path / "signals.log"
    p = start_recorder(sup, log, "--signal-group", group=True)
    names = ["HUP", "USR1", "TERM", "WINCH"]
    deliver_each(p, log, names, who="child")
    wait_for(lambda: recorded(log, "grandchild") == names, what="grandchild to record every signal")
    rc, _, err = finish(p)
    assert rc == 0, err
    assert recorded(log, "child") == names and recorded(log, "grandchild") == names


def test_without_signal_group_only_the_child_is_signalled(sup, tmp_path):
    log = tmp_path / "signals.log"
    p = start_recorder(sup, log, group=True)
    names = ["HUP", "USR1", "TERM"]
    deliver_each(p, log, names)
    rc, _, err = finish(p)
    assert rc == 0, err
    assert recorded(log, "child") == names and recorded(log, "grandchild") == []


def test_child_ignoring_term_keeps_running_until_killed(sup, tmp_path):
    pidfile = tmp_path / "pid"
    p = sup.popen(["--", *sup.probe("ignore-term", pidfile)])
    child = int(wait_for(lambda: read_lines(pidfile), what="child pid")[0])
    try:
        p.send_signal(signal.SIGTERM)
        p.send_signal(signal.SIGTERM)
        with pytest.raises(subprocess.TimeoutExpired):
            p.wait(timeout=1)
        os.kill(child, 0)  # still alive
    finally:
        os.kill(child, signal.SIGKILL)
    assert p.wait(timeout=30) == 128 + signal.SIGKILL


def test_ctrl_c_on_a_terminal_reaches_the_foreground_child(sup, tmp_path):
    """baowrap runs as a session leader on a new pty, like a shell's job;
    the child must own the foreground, so ^C goes to it, and it dies of it."""
    out = tmp_path / "state.json"
    master, slave = pty.openpty()

    def controlling_terminal():
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)
    p = subprocess.Popen([sup.binary, "--", *sup.probe("foreground", out)], env={"PATH": PATH},
                         stdin=slave, stdout=slave, stderr=slave, start_new_session=True,
                         preexec_fn=controlling_terminal)
    os.close(slave)
    state = {}
    try:
        state = json.loads(wait_for(lambda: out.exists() and out.read_text(), what="probe state"))
        assert state["foreground"] is True and state["pgid"] == state["pid"] != p.pid, state
        os.write(master, b"\x03")
        assert p.wait(timeout=30) == 128 + signal.SIGINT
    finally:
        if p.poll() is None:
            p.kill()
            if state:
                os.kill(state["pid"], signal.SIGKILL)
        os.close(master)


def test_orphans_are_reaped_by_the_subreaper(sup, tmp_path):
    out = tmp_path / "orphans.json"
    r = sup.run(["--", *sup.probe("orphans", 30, out, 20)])
    assert r.returncode == 0, r
    report = json.loads(out.read_text())
    assert report["ppids"] == [str(report["supervisor"])] * 30, report  # baowrap adopted them
    assert report["zombies"] == 0, report


def unshare_works():
    try:
        return subprocess.run(["unshare", "-Urpf", "--mount-proc", "true"], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


needs_pid_namespace = pytest.mark.skipif(not unshare_works(), reason="unshare -Urpf is not permitted here")
UNSHARE = ["unshare", "-Urpf", "--mount-proc"]


@needs_pid_namespace
def test_as_pid_1_reaps_100_orphans(sup, tmp_path):
    out = tmp_path / "orphans.json"
    r = subprocess.run([*UNSHARE, sup.binary, "--", *sup.probe("orphans", 100, out, 20)],
                       env={"PATH": PATH}, capture_output=True, timeout=120)
    assert r.returncode == 0, r
    report = json.loads(out.read_text())
    assert report["supervisor"] == 1 and report["ppids"] == ["1"] * 100, report
    assert report["zombies"] == 0, report


# Control for the test above: an init that waits only for its own child, as
# a naive entrypoint does, leaves every orphan a zombie.
NAIVE_INIT = """
import os, sys
pid = os.fork()
if pid == 0:
    os.execv(sys.executable, [sys.executable, *sys.argv[1:]])
os.waitpid(pid, 0)
"""


@needs_pid_namespace
def test_control_naive_pid_1_leaves_zombies(sup, tmp_path):
    out = tmp_path / "orphans.json"
    r = subprocess.run([*UNSHARE, sys.executable, "-c", NAIVE_INIT, *sup.probe("orphans", 20, out, 0.5)[1:]],
                       env={"PATH": PATH}, capture_output=True, timeout=120)
    assert r.returncode == 0, r
    report = json.loads(out.read_text())
    assert report["ppids"] == ["1"] * 20 and report["zombies"] == 20, report


@needs_pid_namespace
def test_as_pid_1_forwards_signals_sent_from_outside(sup, tmp_path):
    """A container runtime signals PID 1 from the parent namespace."""
    log = tmp_path / "signals.log"
    p = subprocess.Popen([*UNSHARE, sup.binary, "--", *sup.probe("signals", log)], env={"PATH": PATH},
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    wait_for(lambda: any(" ready " in l for l in read_lines(log)), what="probe ready")
    # unshare -f forks; its child is the namespace's PID 1 and execs baowrap.
    init = int(open(f"/proc/{p.pid}/task/{p.pid}/children").read().split()[0])
    assert os.readlink(f"/proc/{init}/exe") == os.path.realpath(sup.binary)
    for name in ["TERM", "HUP", "INT", "USR1"]:
        os.kill(init, getattr(signal, "SIG" + name))
        wait_for(lambda: f"child {name}" in read_lines(log), what=f"child to record {name}")
    rc, _, err = finish(p)
    assert rc == 0, err
    assert recorded(log, "child") == ["TERM", "HUP", "INT", "USR1"]
