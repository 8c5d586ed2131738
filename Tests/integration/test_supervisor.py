"""baowrap as a plain init (`baowrap -- cmd`, no secrets): exit statuses,
exec failures, and what the child inherits, byte for byte. Where a check
could pass by accident, a control runs the same probe without baowrap and
shows the difference is real."""
import os
import resource
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

import pytest

from supervised import PATH, log_lines, sup  # noqa: F401  (sup is a fixture)

# Sampled across the range, with every value that has a meaning of its own.
EXIT_CODES = [0, 1, 2, 3, 42, 64, 100, 124, 125, 126, 127, 128, 129, 137, 143, 200, 254, 255]


@pytest.mark.parametrize("code", EXIT_CODES)
def test_exit_status_passes_through(sup, code):
    r = sup.run(["--", "sh", "-c", f"exit {code}"])
    assert r.returncode == code, r
    assert r.stderr == b"", r


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGSEGV, signal.SIGTERM, signal.SIGINT,
                                 signal.SIGABRT, signal.SIGUSR1])
def test_signal_death_gives_128_plus_signal(sup, sig):
    r = sup.run(["--", "sh", "-c", f"kill -{sig.name[3:]} $$"])
    assert r.returncode == 128 + sig, r


def no_core_dumps():
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def test_real_segfault_gives_139(sup):
    r = sup.run(["--", *sup.probe("segfault")], preexec_fn=no_core_dumps)
    assert r.returncode == 139, r


def exec_failure(r):
    errors = [l for l in log_lines(r.stderr) if l["level"] == "error"]
    assert len(errors) == 1, r
    assert errors[0]["event"] == "exec_failed" and errors[0]["class"] == "system", errors
    assert len(r.stderr.splitlines()) == 1, r
    return errors[0]["msg"]


def test_command_not_found_is_127(sup):
    r = sup.run(["--", "no-such-command-baowrap-test", "arg"])
    assert r.returncode == 127, r
    assert '"no-such-command-baowrap-test"' in exec_failure(r)


def test_missing_path_is_127(sup, tmp_path):
    r = sup.run(["--", str(tmp_path / "missing" / "tool")])
    assert r.returncode == 127, r
    assert "No such file or directory" in exec_failure(r)


def test_file_without_execute_bit_is_126(sup, tmp_path):
    f = tmp_path / "tool"
    f.write_text("#!/bin/sh\necho started\n")
    f.chmod(0o644)
    r = sup.run(["--", str(f)])
    assert r.returncode == 126 and r.stdout == b"", r
    assert "Permission denied" in exec_failure(r)


def test_non_executable_found_in_path_is_126(sup, tmp_path):
    (tmp_path / "tool").write_text("#!/bin/sh\necho started\n")
    r = sup.run(["--", "tool"], env={"PATH": f"{tmp_path}:{PATH}"})
    assert r.returncode == 126 and r.stdout == b"", r
    exec_failure(r)


def test_directory_is_126(sup, tmp_path):
    r = sup.run(["--", str(tmp_path)])
    assert r.returncode == 126, r
    exec_failure(r)


@pytest.mark.parametrize("content", [b"\x7fELF\x02\x01\x01garbage", b"echo no shebang\n"], ids=["bad-elf", "no-shebang"])
def test_unknown_format_is_126(sup, tmp_path, content):
    f = tmp_path / "tool"
    f.write_bytes(content)
    f.chmod(0o755)
    r = sup.run(["--", str(f)])
    assert r.returncode == 126 and r.stdout == b"", r
    assert "Exec format error" in exec_failure(r)


def test_argv_passes_byte_for_byte(sup):
    args = [b"plain", "ünïcødé ✓ 🦀".encode(), b"\xff\xfe raw \x80", b"", b"with space", b"a=b",
            b"--", b"-x", b"--secret", b"$HOME", b"new\nline"]
    r = sup.run([b"--", b"printf", b"%s\\0", *args])
    assert r.returncode == 0, r
    assert r.stdout == b"".join(a + b"\0" for a in args)


def test_child_argv_is_exactly_the_command(sup):
    r = sup.run(["--log-level", "warn", "--", "cat", "/proc/self/cmdline"])
    assert r.returncode == 0, r
    assert r.stdout == b"cat\0/proc/self/cmdline\0"


def test_environment_passes_byte_for_byte_without_own_variables(sup):
    inherited = [
        (b"PATH", PATH.encode()),
        (b"PLAIN", b"value"),
        (b"EQUALS", b"a=b==c="),
        (b"BAOWRAP_LOG_LEVEL", b"info"),
        (b"NEWLINES", b"line1\nline2\n"),
        (b"NON_UTF8", b"\xff\xfe\x80 bytes"),
        (b"BAOWRAP_TYPO_VAR", b"x"),
        (b"EMPTY", b""),
        (b"UNICODE", "ünï ✓".encode()),
        (b"SWIFT_BACKTRACE", b"enable=yes"),  # baowrap sets its own, never the child's
        (b"lower.case-name", b"ok"),
        (b"LAST", b"end"),
    ]
    r = sup.run(["--", "cat", "/proc/self/environ"], env=dict(inherited))
    assert r.returncode == 0, r
    assert r.stdout == b"".join(k + b"=" + v + b"\0" for k, v in inherited if not k.startswith(b"BAOWRAP_"))
    warnings = [l for l in log_lines(r.stderr) if l["level"] == "warn"]
    assert [(w["event"], w.get("var")) for w in warnings] == [("unknown_variable", "BAOWRAP_TYPO_VAR")], r


# Builds an environment no dict can: duplicates, entries without "=", and an
# empty name, then execs argv with it (ctypes, no shell in between).
RAW_EXEC = r"""
import ctypes, sys
split = sys.argv.index("--")
env = [bytes.fromhex(h) for h in sys.argv[1:split]]
argv = [a.encode() for a in sys.argv[split + 1:]]
libc = ctypes.CDLL(None, use_errno=True)
arr = lambda items: (ctypes.c_char_p * (len(items) + 1))(*items, None)
libc.execve(argv[0], arr(argv), arr(env))
sys.exit("execve failed: %d" % ctypes.get_errno())
"""


def test_raw_environment_entries_pass_in_order(sup):
    entries = [b"PATH=" + PATH.encode(), b"DUP=first", b"NO_EQUALS_SIGN", b"BAOWRAP_LOG_LEVEL=warn",
               b"DUP=second", b"=empty-name", b"TAIL=\xff"]
    r = subprocess.run([sup.probe()[0], "-c", RAW_EXEC, *(e.hex() for e in entries), "--",
                        sup.binary, "--", "/bin/cat", "/proc/self/environ"], capture_output=True, timeout=60)
    assert r.returncode == 0, r
    assert r.stdout == b"".join(e + b"\0" for e in entries if not e.startswith(b"BAOWRAP_"))


@pytest.fixture
def extra_fds(tmp_path):
    read_end, write_end = os.pipe()
    f = open(tmp_path / "held-open", "w")
    yield (read_end, write_end, f.fileno())
    os.close(read_end)
    os.close(write_end)
    f.close()


def test_child_gets_only_fds_0_1_2(sup, extra_fds):
    direct = sup.probe_state(direct=True, pass_fds=extra_fds)
    assert set(extra_fds) <= set(direct["fds"]), direct  # control: the probe sees inherited fds
    state = sup.probe_state(pass_fds=extra_fds)
    assert state["fds"] == [0, 1, 2], state


def blocked_and_ignored():
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT, signal.SIGUSR1, signal.SIGCHLD})
    for s in (signal.SIGHUP, signal.SIGUSR2, signal.SIGPIPE, signal.SIGQUIT):
        signal.signal(s, signal.SIG_IGN)


def test_child_starts_with_no_signal_blocked_or_ignored(sup):
    assert sup.signal_state() == {"SigBlk": 0, "SigIgn": 0}


def test_child_gets_the_mask_it_would_have_without_baowrap_and_default_dispositions(sup):
    """As tini: the mask baowrap was started with is handed back (the spec's
    "original mask"); ignored dispositions are reset to default."""
    direct = sup.signal_state(direct=True, preexec_fn=blocked_and_ignored)
    assert direct["SigBlk"] != 0 and direct["SigIgn"] != 0, direct  # control
    assert sup.signal_state(preexec_fn=blocked_and_ignored) == {"SigBlk": direct["SigBlk"], "SigIgn": 0}


def test_child_leads_its_own_process_group(sup):
    state = sup.probe_state()
    assert state["pgid"] == state["pid"] != os.getpgrp(), state
    assert state["foreground"] is None  # stdin is not a terminal here


def test_stdin_passes_through(sup):
    data = os.urandom(300_000)
    r = sup.run(["--", "cat"], input=data)
    assert r.returncode == 0, r
    assert r.stdout == data


def test_ten_mib_of_stdout_arrive_intact(sup, tmp_path):
    data = os.urandom(10 * 1024 * 1024)
    (tmp_path / "big").write_bytes(data)
    r = sup.run(["--", "cat", str(tmp_path / "big")])
    assert r.returncode == 0, r
    assert len(r.stdout) == len(data) and r.stdout == data


def test_cwd_and_umask_are_inherited(sup, tmp_path):
    r = sup.run(["--", "sh", "-c", "umask; pwd"], cwd=tmp_path, preexec_fn=lambda: os.umask(0o027))
    assert r.returncode == 0, r
    assert r.stdout.decode().split() == ["0027", str(tmp_path)]


@pytest.fixture(scope="module")
def public_binary(binary):
    """A copy every uid can execute: setpriv drops to nobody, and the
    checkout may sit under a private home directory."""
    d = Path(tempfile.mkdtemp(prefix="baowrap-public-"))
    d.chmod(0o755)
    copy = d / "baowrap"
    shutil.copy(binary, copy)
    copy.chmod(0o755)
    yield str(copy)
    shutil.rmtree(d)


# Process-attribute variations a container runtime may apply before baowrap.
PRIVILEGE_VARIANTS = {
    "inherited": [],
    "no-new-privs": ["setpriv", "--no-new-privs"],
    "nobody": ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"],
    "ambient-cap": ["setpriv", "--inh-caps=+net_bind_service", "--ambient-caps=+net_bind_service"],
    "smaller-bounding-set": ["setpriv", "--bounding-set=-net_raw,-sys_admin", "--inh-caps=+chown"],
    "rlimits": ["prlimit", "--nofile=512:1024", "--core=0:4096", "--memlock=65536:131072", "--nproc=4000:5000"],
}


@pytest.mark.skipif(os.geteuid() != 0, reason="the variants need root to apply")
@pytest.mark.parametrize("variant", PRIVILEGE_VARIANTS)
def test_capabilities_and_rlimits_are_what_the_child_would_have_anyway(public_binary, variant):
    prefix = PRIVILEGE_VARIANTS[variant]
    probe = ["sh", "-c", "grep -E '^(Cap|NoNewPrivs)' /proc/self/status; ulimit -a; ulimit -H -a"]
    env = {"PATH": PATH}
    direct = subprocess.run([*prefix, *probe], capture_output=True, env=env, timeout=60)
    wrapped = subprocess.run([*prefix, public_binary, "--", *probe], capture_output=True, env=env, timeout=60)
    assert direct.returncode == 0 and wrapped.returncode == 0, (direct, wrapped)
    assert b"CapEff" in direct.stdout and b"NoNewPrivs" in direct.stdout
    assert wrapped.stdout == direct.stdout
