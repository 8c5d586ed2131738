"""Running dist/baowrap as a plain init (no secrets, no OpenBao), with the
probe program (supervisor_probe.py) as its workload. The supervisor tests
use this instead of the `bw` fixture so they need no harness."""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

PROBE = str(Path(__file__).with_name("supervisor_probe.py"))
PATH = "/usr/local/bin:/usr/bin:/bin"


def wait_for(predicate, timeout=20.0, what="condition"):
    """Polls until `predicate()` is truthy; the bound only catches hangs."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(0.01)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def read_lines(path: Path):
    try:
        return path.read_text().splitlines()
    except FileNotFoundError:
        return []


def log_lines(stderr: bytes):
    """The wrapper's JSON log lines."""
    out = []
    for line in stderr.decode(errors="replace").splitlines():
        if line.startswith("{"):
            out.append(json.loads(line))
    return out


class Supervised:
    def __init__(self, binary: Path, tmp: Path):
        self.binary = str(Path(binary).resolve())  # tests change cwd
        self.tmp = tmp

    @staticmethod
    def probe(*args) -> list:
        return [sys.executable, PROBE, *map(str, args)]

    def run(self, args, env=None, timeout=60, **kw) -> subprocess.CompletedProcess:
        return subprocess.run([self.binary, *args], env={"PATH": PATH} if env is None else env,
                              capture_output=True, timeout=timeout, **kw)

    def popen(self, args, env=None, **kw) -> subprocess.Popen:
        kw.setdefault("stdin", subprocess.PIPE)
        kw.setdefault("stdout", subprocess.PIPE)
        kw.setdefault("stderr", subprocess.PIPE)
        return subprocess.Popen([self.binary, *args], env={"PATH": PATH} if env is None else env, **kw)

    def probe_state(self, run_args=(), direct=False, **kw) -> dict:
        """The probe's view of its own start, under baowrap (or run directly,
        as the control that shows what baowrap changed)."""
        out = self.tmp / f"state-{os.urandom(4).hex()}.json"
        cmd = self.probe("state", out)
        if direct:
            r = subprocess.run(cmd, env={"PATH": PATH}, capture_output=True, timeout=60, **kw)
        else:
            r = self.run([*run_args, "--", *cmd], **kw)
        assert r.returncode == 0, r
        return json.loads(out.read_text())

    def signal_state(self, direct=False, **kw) -> dict:
        """SigBlk and SigIgn as the child's first instruction would see them
        (grep changes no disposition, unlike Python)."""
        cmd = ["grep", "-E", "^Sig(Blk|Ign):", "/proc/self/status"]
        if direct:
            r = subprocess.run(cmd, env={"PATH": PATH}, capture_output=True, timeout=60, **kw)
        else:
            r = self.run(["--", *cmd], **kw)
        assert r.returncode == 0, r
        return {k: int(v, 16) for k, v in (line.split(":") for line in r.stdout.decode().splitlines())}


@pytest.fixture
def sup(binary, tmp_path):
    return Supervised(binary, tmp_path)
