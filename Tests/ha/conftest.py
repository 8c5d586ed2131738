"""Fixtures for black-box tests of the built baowrap binary against the HA
lane (Tests/harness/ha): three OpenBao Raft nodes behind haproxy and nginx
stream. Tests/run-ha.sh starts the lane and points HA_ENV at its env file;
run alone, the session starts its own lane in a temporary state dir.

The wrapper is run through the integration tests' `Baowrap` class, so every
run's output is checked for every seeded value and JWT here too."""
import importlib.util
import json
import os
import re
import ssl
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LANE = REPO / "Tests" / "harness" / "ha"


def _integration_module(name):
    spec = importlib.util.spec_from_file_location(f"integration_{name}", REPO / "Tests" / "integration" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


integration = _integration_module("conftest")
client_support = _integration_module("client_support")

# The variables every workload gets, and the seeded reference of each.
SECRETS = {
    "DB_USER": "secret/app/db#username",
    "DB_PASSWORD": "secret/app/db#password",
    "PINNED": "secret/app/versioned#value#2",
    "API_KEY": "secret/app/api#key",
}
SECRET_ARGS = [a for name, ref in SECRETS.items() for a in ("--secret", f"{name}={ref}")]
# The load balancers in front of the cluster, by the env file's address key.
BALANCERS = {"nginx": "HA_NGINX_ADDR", "haproxy": "HA_HAPROXY_ADDR"}


@pytest.fixture(scope="session")
def lane():
    env_file = os.environ.get("HA_ENV")
    if env_file:
        yield integration.read_env_file(Path(env_file))
        return
    state = tempfile.mkdtemp(prefix="baowrap-ha-")
    os.rmdir(state)
    subprocess.run([LANE / "start.sh", state], check=True, stdout=subprocess.DEVNULL)
    try:
        yield integration.read_env_file(Path(state) / "env")
    finally:
        subprocess.run([LANE / "stop.sh", state], check=False, stdout=subprocess.DEVNULL)


@pytest.fixture(scope="session")
def expected(lane) -> dict:
    return json.loads(Path(lane["EXPECTED_JSON"]).read_text())


class LaneBaowrap(integration.Baowrap):
    """The integration tests' runner, logging in with jwt auth through one
    of the lane's load balancers."""

    def base_env(self, **extra) -> dict:
        env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "BAOWRAP_ADDR": self.h["HA_NGINX_ADDR"],
            "BAOWRAP_CACERT": self.h["CA_CERT"],
            "BAOWRAP_AUTH_METHOD": "jwt",
            "BAOWRAP_AUTH_PATH": self.h["JWT_AUTH_PATH"],
            "BAOWRAP_ROLE": self.h["JWT_ROLE"],
            "BAOWRAP_JWT_FILE": self.h["TOKEN_JWT_VALID"],
            "BAOWRAP_TIMEOUT": "30s",
            "BAOWRAP_LOG_LEVEL": "debug",
        }
        env.update({k: v for k, v in extra.items() if v is not None})
        return env

    def via(self, balancer, **extra) -> dict:
        """The base environment pointed at a balancer: nginx, haproxy, or
        haproxy's active-node-only frontend (haproxy_active)."""
        return self.base_env(BAOWRAP_ADDR=self.h[f"HA_{balancer.upper()}_ADDR"], **extra)


binary = integration.binary


@pytest.fixture
def bw(binary, lane, expected, tmp_path):
    return LaneBaowrap(binary, lane, expected, tmp_path)


class Cluster:
    """Faults on single nodes, through Tests/harness/ha/node.sh. Whatever a
    test kills or seals is restored after it."""

    def __init__(self, lane):
        self.lane = lane
        self.killed = set()
        self.sealed = set()

    def _node(self, *args) -> str:
        p = subprocess.run([self.lane["HA_NODE_SCRIPT"], self.lane["HA_STATE_DIR"], *args],
                           capture_output=True, text=True, timeout=120)
        assert p.returncode == 0, f"node.sh {' '.join(args)}: {p.stderr}"
        return p.stdout.strip()

    def active(self) -> int:
        return int(self._node("active"))

    def standby(self) -> int:
        active = self.active()
        return next(n for n in (1, 2, 3) if n != active and n not in self.killed | self.sealed)

    def addr(self, n) -> str:
        return self.lane[f"NODE{n}_ADDR"]

    def kill(self, n):
        self.killed.add(n)
        self._node("kill", str(n))

    def seal(self, n):
        self.sealed.add(n)
        self._node("seal", str(n))

    def start(self, n):
        self._node("start", str(n))
        self.killed.discard(n)

    def leaderless(self) -> int:
        """Kills the active node and one standby: the survivor can elect no
        leader, so the lane stays in an election's state until `start`
        brings a node back. Returns the killed leader."""
        leader = self.active()
        self.kill(leader)
        self.kill(next(n for n in (1, 2, 3) if n != leader))
        return leader

    def wait_haproxy(self, backend, n, state):
        """Until haproxy's latest word on server nodeN of `backend` is
        `state` (UP or DOWN)."""
        log = Path(self.lane["HA_LOG_DIR"]) / "haproxy.log"
        end = time.monotonic() + 20
        while re.findall(rf"Server {backend}/node{n} is ([A-Z]+)", log.read_text())[-1:] != [state]:
            assert time.monotonic() < end, f"haproxy never marked {backend}/node{n} {state}"
            time.sleep(0.1)

    def restore(self):
        # A manually sealed node stays sealed until its process restarts.
        for n in sorted(self.sealed - self.killed):
            self._node("kill", str(n))
        for n in sorted(self.killed | self.sealed):
            self._node("start", str(n))
        self.killed.clear()
        self.sealed.clear()
        self._node("settle")


@pytest.fixture
def cluster(lane):
    c = Cluster(lane)
    c._node("settle")
    yield c
    c.restore()


def retries(result) -> list:
    """The wrapper's debug lines for attempts it tried again."""
    return [line for line in result.logs if line.get("event") == "retry"]


def bao_api(lane, addr, method, path, body=None):
    """Admin calls to one node with the root token (test setup only)."""
    ctx = ssl.create_default_context(cafile=lane["CA_CERT"])
    req = urllib.request.Request(f"{addr}/v1/{path}", method=method,
                                 data=None if body is None else json.dumps(body).encode())
    req.add_header("X-Vault-Token", lane["HA_ROOT_TOKEN"])
    with urllib.request.urlopen(req, timeout=10, context=ctx) as r:
        raw = r.read()
        return json.loads(raw) if raw else None


def assert_values(child: dict, expected: dict):
    """The workload got every SECRETS variable with exactly its seeded value."""
    for name, ref in SECRETS.items():
        assert child.get(name.encode()) == expected[ref].encode(), f"{name} is missing or wrong"
