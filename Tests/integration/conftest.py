"""Fixtures for black-box tests of the built baowrap binary against the
real harness (Tests/harness). Tests/run-integration.sh starts the harness and
points HARNESS_ENV at its env file; run alone, the session starts its own
harness in a temporary state dir and stops it afterwards."""
import base64
import contextlib
import json
import os
import re
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
HARNESS = REPO / "Tests" / "harness"


def read_env_file(path: Path) -> dict:
    env = {}
    for line in path.read_text().splitlines():
        if "=" in line:
            k, v = line.split("=", 1)
            env[k] = v
    return env


@pytest.fixture(scope="session")
def harness():
    env_file = os.environ.get("HARNESS_ENV")
    if env_file:
        yield read_env_file(Path(env_file))
        return
    state = tempfile.mkdtemp(prefix="baowrap-harness-")
    os.rmdir(state)
    subprocess.run([HARNESS / "start.sh", state], check=True, stdout=subprocess.DEVNULL)
    try:
        yield read_env_file(Path(state) / "env")
    finally:
        subprocess.run([HARNESS / "stop.sh", state], check=False, stdout=subprocess.DEVNULL)


@pytest.fixture(scope="session")
def expected(harness) -> dict:
    return json.loads(Path(harness["EXPECTED_JSON"]).read_text())


def jwt_canaries(token: bytes):
    """A JWT and its payload and signature segments (the header is the same
    for every token and no secret)."""
    token = token.strip()
    parts = token.split(b".")
    return [token, *parts[1:]] if len(parts) == 3 else [token]


def harness_jwts(harness) -> list:
    out = []
    for key, path in harness.items():
        if key.startswith("TOKEN_") and Path(path).is_file():
            out += jwt_canaries(Path(path).read_bytes())
    return out


# OpenBao client tokens (service, batch, recovery; hv* as Vault spells them).
# No test prints one on purpose, so any token-shaped string in the wrapper's
# output is a leak, whichever login it came from.
TOKEN_SHAPE = re.compile(rb"(?<![A-Za-z0-9])(?:hv)?[sbr]\.[A-Za-z0-9_-]{20,}")


def assert_no_canary(canaries, data: bytes, context=None):
    for c in canaries:
        assert c not in data, f"secret leaked into output: {context!r}"
    m = TOKEN_SHAPE.search(data)
    assert m is None, f"client-token-shaped string {m and m.group()!r} in output: {context!r}"


def canary_forms(values):
    """Every form in which a secret could leak into output."""
    forms = set()
    for v in values:
        b = v.encode() if isinstance(v, str) else v
        if len(b) < 8:
            continue  # short values such as "42" appear in any output by chance
        forms.add(b)
        forms.add(base64.b64encode(b))
        forms.add(base64.urlsafe_b64encode(b).rstrip(b"="))
        forms.add(b.hex().encode())
    return forms


class Result:
    def __init__(self, proc: subprocess.CompletedProcess):
        self.returncode = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr

    @property
    def logs(self):
        """The wrapper's JSON log lines (stderr), parsed; other lines skipped."""
        out = []
        for line in self.stderr.decode(errors="replace").splitlines():
            if line.startswith("{"):
                try:
                    out.append(json.loads(line))
                except ValueError:
                    pass
        return out

    def errors(self):
        return [l for l in self.logs if l.get("level") == "error"]

    def error_classes(self):
        return [l.get("class") for l in self.errors()]

    def __repr__(self):
        return f"<rc={self.returncode} stdout={self.stdout[:300]!r} stderr={self.stderr[:2000]!r}>"


class Baowrap:
    """Runs the real binary as a black box. Every run's stdout and stderr are
    checked for every seeded secret value, every harness JWT, the JWT file and
    static token the run was given, and anything shaped like a client token
    (each also in base64/hex form) unless a test lets the child print one on
    purpose. Every integration test starts baowrap through `run`,
    `child_env` or `start`, so every scenario is canary-checked."""

    def __init__(self, binary: Path, harness: dict, expected: dict, tmp: Path):
        self.binary = str(binary)
        self.h = harness
        self.tmp = tmp
        self.canaries = canary_forms([*expected.values(), *harness_jwts(harness)])

    def base_env(self, **extra) -> dict:
        """Kubernetes auth over TLS, direct, CA pinned: the main job's setup."""
        env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "BAOWRAP_ADDR": self.h["BAO_TLS_ADDR"],
            "BAOWRAP_CACERT": self.h["CA_CERT"],
            "BAOWRAP_ROLE": self.h["K8S_ROLE"],
            "BAOWRAP_JWT_FILE": self.h["TOKEN_K8S_VALID"],
            "BAOWRAP_TIMEOUT": "10s",
        }
        env.update({k: v for k, v in extra.items() if v is not None})
        return env

    def run(self, args, env=None, input=None, timeout=60, secret_output_ok=False, **popen) -> Result:
        env = self.base_env() if env is None else env
        extra = self.run_canaries(args, env)
        with checked_by_bw():
            proc = subprocess.run([self.binary, *args], env=env, input=input, capture_output=True, timeout=timeout, **popen)
        r = Result(proc)
        if not secret_output_ok:
            self.assert_no_secret(r.stdout + r.stderr, r, extra)
        return r

    def start(self, args, env=None, **popen) -> "Running":
        """Starts baowrap without waiting, for tests that look at the live
        process (signals, /proc). Output goes to files; `finish` checks it."""
        env = self.base_env() if env is None else env
        return Running(self, args, env, self.run_canaries(args, env), **popen)

    def run_canaries(self, args, env) -> set:
        """Secrets this one run is given: the static token and the JWT file
        (read now: tests may remove or rewrite it while baowrap runs)."""
        values = []
        token = env.get("BAOWRAP_TOKEN")
        if token:
            values.append(token)
        jwt = env.get("BAOWRAP_JWT_FILE")
        for i, a in enumerate(args):
            if a == "--":
                break
            if a == "--jwt-file" and i + 1 < len(args):
                jwt = args[i + 1]
            elif a.startswith("--jwt-file="):
                jwt = a.split("=", 1)[1]
        if jwt and os.path.isfile(jwt):
            values += jwt_canaries(Path(jwt).read_bytes())
        return canary_forms(values)

    def assert_no_secret(self, data: bytes, context=None, extra=()):
        assert_no_canary(self.canaries | set(extra), data, context)

    def child_env(self, args, env=None, **kw) -> tuple:
        """Runs `baowrap ARGS -- env -0` with the child writing its environment
        to a file (so no value reaches the wrapper's outputs). Returns the
        Result and the child's environment as {bytes: bytes}."""
        out = self.tmp / f"child-env-{os.urandom(4).hex()}"
        r = self.run([*args, "--", "sh", "-c", f'env -0 > "{out}"'], env=env, **kw)
        child = {}
        if out.exists():
            for entry in out.read_bytes().split(b"\0"):
                if b"=" in entry:
                    k, v = entry.split(b"=", 1)
                    child[k] = v
        return r, child


class Running:
    """A baowrap process started by `Baowrap.start`."""

    def __init__(self, bw: Baowrap, args, env, canaries, **popen):
        self.bw = bw
        self.canaries = canaries
        self.out_path = bw.tmp / f"out-{os.urandom(4).hex()}"
        self.err_path = bw.tmp / f"err-{os.urandom(4).hex()}"
        with open(self.out_path, "wb") as out, open(self.err_path, "wb") as err, checked_by_bw():
            self.proc = subprocess.Popen([bw.binary, *args], env=env, stdout=out, stderr=err, **popen)
        self.pid = self.proc.pid

    def stderr(self) -> bytes:
        return self.err_path.read_bytes()

    def wait_for_event(self, event: str, limit=30) -> dict:
        """Waits until baowrap logs `event` (or exits); the limit only
        catches hangs."""
        end = time.monotonic() + limit
        while time.monotonic() < end:
            for line in self.stderr().decode(errors="replace").splitlines():
                if line.startswith("{") and f'"event":"{event}"' in line:
                    return json.loads(line)
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"no {event} event from baowrap: {self.stderr()[:2000]!r}")

    def child_pids(self) -> list:
        return [int(p) for p in Path(f"/proc/{self.pid}/task/{self.pid}/children").read_text().split()]

    def finish(self, timeout=60, secret_output_ok=False) -> Result:
        """Waits for exit (killing on timeout) and checks the output."""
        try:
            self.proc.wait(timeout=timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
        r = Result(subprocess.CompletedProcess(self.proc.args, self.proc.returncode,
                                               self.out_path.read_bytes(), self.stderr()))
        if not secret_output_ok:
            self.bw.assert_no_secret(r.stdout + r.stderr, r, self.canaries)
        return r


_bw_depth = 0


@contextlib.contextmanager
def checked_by_bw():
    """Marks processes `Baowrap` starts: it checks (or, with
    secret_output_ok, excuses) their output itself."""
    global _bw_depth
    _bw_depth += 1
    try:
        yield
    finally:
        _bw_depth -= 1


def runs_baowrap(args, env) -> bool:
    words = [args] if isinstance(args, (str, bytes, os.PathLike)) else list(args)
    words += list((env or {}).values())
    return any(os.path.basename(os.fsdecode(w)) == "baowrap" for w in words if isinstance(w, (str, bytes, os.PathLike)))


@pytest.fixture(scope="session", autouse=True)
def canary_guard(harness, expected):
    """Tests that start baowrap without `bw` (their own helper, a script
    given its path, a chroot) get the same check on every output they
    capture with communicate()/run(), so every scenario is canary-checked."""
    canaries = canary_forms([*expected.values(), *harness_jwts(harness)])
    init, communicate = subprocess.Popen.__init__, subprocess.Popen.communicate

    def guarded_init(self, args, *a, **kw):
        self.canary_guarded = _bw_depth == 0 and runs_baowrap(args, kw.get("env"))
        init(self, args, *a, **kw)

    def guarded_communicate(self, *a, **kw):
        out, err = communicate(self, *a, **kw)
        if getattr(self, "canary_guarded", False):
            data = b"".join(x if isinstance(x, bytes) else x.encode() for x in (out, err) if x)
            assert_no_canary(canaries, data, self.args)
        return out, err

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(subprocess.Popen, "__init__", guarded_init)
        mp.setattr(subprocess.Popen, "communicate", guarded_communicate)
        yield


@pytest.fixture(scope="session")
def binary() -> Path:
    b = Path(os.environ.get("BAOWRAP_BIN", REPO / "dist" / "baowrap")).resolve()
    assert b.exists(), f"{b} missing: run `make baowrap` first"
    return b


@pytest.fixture(scope="session")
def baowrapctl() -> Path:
    b = Path(os.environ.get("BAOWRAPCTL_BIN", REPO / "dist" / "baowrapctl"))
    assert b.exists(), f"{b} missing: run `make baowrapctl` first"
    return b


@pytest.fixture
def bw(binary, harness, expected, tmp_path):
    return Baowrap(binary, harness, expected, tmp_path)


class FaultProxy:
    def __init__(self, control: str):
        self.control = control

    def _post(self, path, body=None):
        data = json.dumps(body or {}).encode()
        req = urllib.request.Request(self.control + path, data=data, method="POST",
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.read()

    def mode(self, mode, **kw):
        self._post("/mode", {"mode": mode, **kw})

    def reset(self):
        self._post("/reset")

    def requests(self):
        with urllib.request.urlopen(self.control + "/requests", timeout=5) as r:
            return json.loads(r.read())


@pytest.fixture
def fault(harness):
    f = FaultProxy(harness["FAULT_CONTROL_ADDR"])
    f.reset()
    yield f
    f.reset()


def bao_api(harness, method, path, body=None, token=None, namespace=None):
    """Admin calls to OpenBao's plain listener with the root token (test setup only)."""
    req = urllib.request.Request(harness["BAO_PLAIN_ADDR"] + "/v1/" + path, method=method,
                                 data=None if body is None else json.dumps(body).encode())
    req.add_header("X-Vault-Token", token or harness["BAO_ROOT_TOKEN"])
    if namespace:
        req.add_header("X-Vault-Namespace", namespace)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            raw = r.read()
            return r.status, (json.loads(raw) if raw else None)
    except urllib.error.HTTPError as e:
        raw = e.read()
        return e.code, (json.loads(raw) if raw.startswith(b"{") else raw)
