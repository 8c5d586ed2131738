"""Secret hygiene of the live wrapper, checked from outside as root.

After the child has been spawned, every readable byte of baowrap's memory
(/proc/PID/mem over every mapping in /proc/PID/maps) is searched for the
secret values, the JWT and the client token: nothing may be found, and no
secret mapping may be left. The same scan of the child must find the values,
which shows the scan works. While the fetch is in flight, secret pages must
be memfd_secret (or, without it, DONTDUMP anonymous pages) and locked; no
core of the wrapper, kernel-made or gcore-made, may hold a secret."""
import ctypes
import json
import os
import re
import resource
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from conftest import TOKEN_SHAPE, bao_api, jwt_canaries

VALUE_REFS = ["secret/app/db#password", "kv1/app/api#token", "secret/app/multiline#value", "secret/app/big#value",
              *[f"secret/many/p{i:03d}#value" for i in range(0, 100, 7)]]

# /proc/PID/mem cannot read these: the vDSO's data pages, no process data.
KERNEL_PAGES = {"[vvar]", "[vvar_vclock]", "[vsyscall]"}


def secret_args(refs):
    args = []
    for i, ref in enumerate(refs):
        args += ["--secret", f"S{i}={ref}"]
    return args


def go_json(value: str) -> bytes:
    """The value as OpenBao's (Go's) encoder writes it inside a JSON string."""
    s = json.dumps(value, ensure_ascii=False)[1:-1]
    return s.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e").encode()


def value_needles(expected, refs) -> dict:
    """Each value raw and as it travels in JSON, plus 32-byte slices of long
    values every KiB, so a partial copy (one receive buffer's worth) shows."""
    needles = {}
    for ref in refs:
        v = expected[ref]
        raw = v.encode()
        if len(raw) < 8:
            continue
        needles[f"{ref} (raw)"] = raw
        needles[f"{ref} (json)"] = go_json(v)
        for off in range(0, len(raw) - 32, 1024) if len(raw) > 256 else []:
            needles[f"{ref} [{off}:+32]"] = raw[off:off + 32]
    return needles


def jwt_needles(path) -> dict:
    return {f"JWT part {i}": p for i, p in enumerate(jwt_canaries(Path(path).read_bytes()))}


def mappings(pid):
    for line in Path(f"/proc/{pid}/maps").read_text().splitlines():
        parts = line.split(None, 5)
        lo, hi = (int(x, 16) for x in parts[0].split("-"))
        yield lo, hi, parts[1], (parts[5] if len(parts) > 5 else ""), line


def scan(pid, needles: dict, shapes=()):
    """Searches every readable mapping of `pid`. Returns (hits, unreadable
    mappings, bytes scanned); `shapes` are regexes matched as well."""
    hits, unreadable, scanned = [], [], 0
    with open(f"/proc/{pid}/mem", "rb", buffering=0) as mem:
        for lo, hi, perms, name, line in mappings(pid):
            if perms[0] != "r" or name in KERNEL_PAGES:
                continue
            try:
                mem.seek(lo)
                data = mem.read(hi - lo)
            except OSError as e:
                unreadable.append(f"{line} ({e})")
                continue
            scanned += len(data)
            for label, n in needles.items():
                at = data.find(n)
                if at >= 0:
                    hits.append(f"{label} at {lo + at:#x} in {line}")
            for rx in shapes:
                for m in rx.finditer(data):
                    hits.append(f"{m.group()!r} at {lo + m.start():#x} in {line}")
    return hits, unreadable, scanned


def smaps(pid):
    """[(header line, {field: value}, set of VmFlags)] per mapping."""
    out, cur = [], None
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        if re.match(r"^[0-9a-f]+-[0-9a-f]+ ", line):
            cur = (line, {}, set())
            out.append(cur)
        elif line.startswith("VmFlags:"):
            cur[2].update(line.split()[1:])
        elif ":" in line:
            k, v = line.split(":", 1)
            cur[1][k] = v.strip()
    return out


def status(pid) -> dict:
    return dict(l.split(":", 1) for l in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in l)


class TokenRecorder(ThreadingHTTPServer):
    """TLS front for OpenBao's plain listener with OpenBao's own certificate:
    baowrap logs in over TLS as it would to OpenBao, and the test learns every
    client token the server hands out, to search memory for it."""
    daemon_threads = True

    def __init__(self, harness):
        super().__init__(("127.0.0.1", 0), _Forward)
        self.upstream = harness["BAO_PLAIN_ADDR"]
        self.tokens = []
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(harness["BAO_SERVER_CERT"], harness["BAO_SERVER_KEY"])
        self.socket = ctx.wrap_socket(self.socket, server_side=True)
        self.addr = f"https://127.0.0.1:{self.server_address[1]}"


class _Forward(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def forward(self):
        n = int(self.headers.get("Content-Length") or 0)
        req = urllib.request.Request(self.server.upstream + self.path, data=self.rfile.read(n) if n else None,
                                     method=self.command)
        for k in ("X-Vault-Token", "X-Vault-Namespace", "Content-Type"):
            if k in self.headers:
                req.add_header(k, self.headers[k])
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                code, body, ctype = r.status, r.read(), r.headers.get("Content-Type")
        except urllib.error.HTTPError as e:
            code, body, ctype = e.code, e.read(), e.headers.get("Content-Type")
        if body.startswith(b"{"):
            token = (json.loads(body).get("auth") or {}).get("client_token")
            if token:
                self.server.tokens.append(token)
        self.send_response(code)
        self.send_header("Content-Type", ctype or "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = forward

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def recorder(harness):
    server = TokenRecorder(harness)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    yield server
    server.shutdown()
    server.server_close()


_libc = ctypes.CDLL(None, use_errno=True)
PR_CAPBSET_DROP, CAP_IPC_LOCK = 24, 14


def memlock_limit(limit):
    """preexec_fn: RLIMIT_MEMLOCK `limit` and no CAP_IPC_LOCK (root would
    bypass the limit), as for a non-root container."""
    def apply():
        resource.setrlimit(resource.RLIMIT_MEMLOCK, (limit, limit))
        if _libc.prctl(PR_CAPBSET_DROP, CAP_IPC_LOCK, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "PR_CAPBSET_DROP")
    return apply


without_mlock = memlock_limit(0)


def start_sleeping(bw, args, env, child=("sleep", "300"), **popen):
    """baowrap ARGS -- sleep (or CHILD), returned once baowrap has spawned the
    child, wiped its copies and revoked the token (the `started` debug line)."""
    run = bw.start(["--log-level", "debug", *args, "--", *child], env=env, **popen)
    try:
        run.wait_for_event("started")
    except AssertionError:
        run.proc.kill()
        raise
    return run


def stop(run):
    run.proc.send_signal(signal.SIGTERM)
    r = run.finish()
    assert r.returncode == 143, r
    return r


def assert_clean_after_spawn(run, needles, child_needles):
    # The wiping allocator is installed: libcurl's and OpenSSL's freed blocks
    # were zeroed (without it the scan below finds the token in the heap).
    assert run.wait_for_event("wiped")["heap_blocks"] > 0
    hits, unreadable, scanned = scan(run.pid, needles, shapes=[TOKEN_SHAPE])
    assert scanned > 1_000_000, "the scan read almost nothing; is /proc/PID/mem readable?"
    assert hits == [], "secret bytes left in the wrapper after spawn:\n" + "\n".join(hits)
    # A secret mapping still in place could not be read, so could hide one.
    assert unreadable == [], unreadable
    assert secret_mappings(run.pid) == [], "a secret mapping outlived the spawn"
    for proc_file in ("environ", "cmdline"):
        data = Path(f"/proc/{run.pid}/{proc_file}").read_bytes()
        assert not [k for k, n in needles.items() if n in data], proc_file

    (child,) = run.child_pids()
    child_hits, _, _ = scan(child, child_needles)
    assert len(child_hits) == len(child_needles), f"the scan misses values the child holds: {child_hits}"
    child_env = Path(f"/proc/{child}/environ").read_bytes().split(b"\0")
    assert not [e for e in child_env if e.startswith(b"BAOWRAP_")]


def test_login_over_tls_leaves_no_secret_in_wrapper_memory(bw, harness, expected, recorder):
    env = bw.base_env(BAOWRAP_ADDR=recorder.addr)
    before = len(recorder.tokens)
    run = start_sleeping(bw, secret_args(VALUE_REFS), env)
    try:
        (token,) = [t.encode() for t in recorder.tokens[before:]]
        needles = {**value_needles(expected, VALUE_REFS), **jwt_needles(harness["TOKEN_K8S_VALID"]),
                   "client token": token}
        child_needles = {r: expected[r].encode() for r in VALUE_REFS if len(expected[r]) >= 8}
        assert_clean_after_spawn(run, needles, child_needles)
    finally:
        stop(run)


def test_jwt_login_through_broker_leaves_no_secret(bw, harness, expected):
    env = bw.base_env(BAOWRAP_BROKER_ADDR=harness["BROKER_ADDR"], BAOWRAP_CONNECT="broker",
                      BAOWRAP_AUTH_PATH=harness["JWT_AUTH_PATH"], BAOWRAP_AUTH_METHOD="jwt",
                      BAOWRAP_ROLE=harness["JWT_ROLE"], BAOWRAP_JWT_FILE=harness["TOKEN_JWT_VALID"])
    refs = VALUE_REFS[:3]
    run = start_sleeping(bw, secret_args(refs), env)
    try:
        needles = {**value_needles(expected, refs), **jwt_needles(harness["TOKEN_JWT_VALID"])}
        assert_clean_after_spawn(run, needles, {r: expected[r].encode() for r in refs})
    finally:
        stop(run)


def test_static_token_is_wiped_from_environ_too(bw, harness, expected):
    code, body = bao_api(harness, "POST", "auth/token/create", {"policies": ["app-read"], "ttl": "5m"})
    assert code == 200, body
    token = body["auth"]["client_token"]
    env = {"PATH": "/usr/bin:/bin", "BAOWRAP_PROFILE": "development", "BAOWRAP_ADDR": harness["BAO_PLAIN_ADDR"],
           "BAOWRAP_TOKEN": token}
    refs = VALUE_REFS[:2]
    run = start_sleeping(bw, secret_args(refs), env)
    try:
        # The variable stays (its name is no secret); its value is zeros.
        assert b"BAOWRAP_TOKEN=\0" in Path(f"/proc/{run.pid}/environ").read_bytes()
        needles = {**value_needles(expected, refs), "static token": token.encode()}
        assert_clean_after_spawn(run, needles, {r: expected[r].encode() for r in refs})
    finally:
        stop(run)


def test_unlocked_fallback_pages_leave_no_secret(bw, harness, expected):
    """Without memfd_secret or mlock (memlock limit 0) secrets live in plain
    DONTDUMP pages; those too are gone after the spawn."""
    refs = VALUE_REFS[:3]
    run = start_sleeping(bw, secret_args(refs), bw.base_env(), preexec_fn=without_mlock)
    try:
        assert int(status(run.pid)["CapBnd"], 16) & (1 << CAP_IPC_LOCK) == 0
        assert run.wait_for_event("mlock_unavailable")["class"] == "mlock_unavailable"
        needles = {**value_needles(expected, refs), **jwt_needles(harness["TOKEN_K8S_VALID"])}
        assert_clean_after_spawn(run, needles, {r: expected[r].encode() for r in refs})
    finally:
        stop(run)


@pytest.fixture
def held_read(fault):
    """Every KV read through the fault proxy hangs, so baowrap is caught
    between login and spawn with the token in memory."""
    fault.mode("blackhole", path="/v1/secret/")
    return fault


def wait_for_held_read(run, fault, limit=30):
    end = time.monotonic() + limit
    while time.monotonic() < end:
        if any(r["path"].startswith("/v1/secret/") and r["status"] is None for r in fault.requests()):
            return
        assert run.proc.poll() is None, run.stderr()
        time.sleep(0.05)
    raise AssertionError("baowrap never reached the KV read")


def test_during_fetch_received_values_and_jwt_exist_only_in_secret_pages(bw, harness, expected, fault):
    """One read is held back; the values that already arrived and the JWT
    (used by the login before) must not be in any readable page meanwhile:
    libcurl's buffers of finished transfers were wiped when freed."""
    fault.mode("delay", ms=60_000, path="/v1/secret/data/app/db")
    done = ["kv1/app/api#token", "secret/many/p001#value", "secret/app/multiline#value"]
    run = bw.start(["--timeout", "50s", *secret_args(done), "--secret", "HELD=secret/app/db#password", "--", "true"],
                   env=bw.base_env(BAOWRAP_ADDR=harness["FAULT_ADDR"]))
    try:
        def arrived():
            reqs = {r["path"]: r["status"] for r in fault.requests()}
            return all(reqs.get(p) == 200 for p in ("/v1/kv1/app/api", "/v1/secret/data/many/p001", "/v1/secret/data/app/multiline")) \
                and "/v1/secret/data/app/db" in reqs
        end = time.monotonic() + 30
        while not arrived():
            assert time.monotonic() < end and run.proc.poll() is None, (fault.requests(), run.stderr())
            time.sleep(0.05)
        needles = {**value_needles(expected, done), **jwt_needles(harness["TOKEN_K8S_VALID"])}
        hits, unreadable, _ = scan(run.pid, needles)
        assert hits == [], "\n".join(hits)
        assert unreadable and all("/secretmem" in u for u in unreadable), unreadable
    finally:
        run.proc.kill()
        run.finish()


def secret_mappings(pid):
    """memfd_secret mappings, and anonymous ones marked DONTDUMP (baowrap's
    fallback); the vDSO's pages carry `dd` too and are no secret."""
    return [m for m in smaps(pid) if "/secretmem" in m[0] or ("dd" in m[2] and m[0].split()[-1] not in KERNEL_PAGES)]


def test_during_fetch_secret_pages_are_locked_and_undumpable(bw, harness, held_read):
    run = bw.start(["--timeout", "20s", "--secret", "DB=secret/app/db#password", "--", "true"],
                   env=bw.base_env(BAOWRAP_ADDR=harness["FAULT_ADDR"]))
    try:
        wait_for_held_read(run, held_read)
        st = status(run.pid)
        assert int(st["CapBnd"], 16) & (1 << CAP_IPC_LOCK)  # root: the lock cannot be refused
        secret = secret_mappings(run.pid)
        assert secret, "no secret mapping while the token is held"
        for header, fields, flags in secret:
            assert "/secretmem" in header, header  # memfd_secret on this kernel
            assert {"lo", "dd"} <= flags, (header, flags)
        locked_kb = sum(int(f["Size"].split()[0]) for _, f, _ in secret)
        assert int(st["VmLck"].split()[0]) >= locked_kb
        # Not even root can read memfd_secret pages through /proc/PID/mem.
        _, unreadable, _ = scan(run.pid, {})
        assert len(unreadable) == len(secret), unreadable
    finally:
        run.proc.kill()
        run.finish()


def test_during_fetch_fallback_pages_are_dontdump_and_wipe_on_fork(bw, harness, held_read):
    run = bw.start(["--timeout", "20s", "--secret", "DB=secret/app/db#password", "--", "true"],
                   env=bw.base_env(BAOWRAP_ADDR=harness["FAULT_ADDR"]), preexec_fn=without_mlock)
    try:
        wait_for_held_read(run, held_read)
        secret = secret_mappings(run.pid)
        assert secret, "no secret mapping while the token is held"
        for header, _, flags in secret:
            assert "/secretmem" not in header  # memlock 0 refuses memfd_secret too
            assert {"dd", "wf"} <= flags, (header, flags)
            assert "lo" not in flags
        assert run.wait_for_event("mlock_unavailable")
    finally:
        run.proc.kill()
        run.finish()


def as_nobody():
    os.setgroups([])
    os.setgid(65534)
    os.setuid(65534)


def test_wrapper_proc_files_are_closed_to_its_own_uid(bw, harness):
    """PR_SET_DUMPABLE 0, seen from an unprivileged user: the wrapper's
    /proc/PID files belong to root and another process of the same uid cannot
    read its environ, while it can read the (dumpable) child's."""
    d = Path(tempfile.mkdtemp(prefix="baowrap-nobody-"))
    try:
        d.chmod(0o755)
        jwt = d / "token"
        shutil.copy(harness["TOKEN_K8S_VALID"], jwt)
        jwt.chmod(0o444)
        run = start_sleeping(bw, ["--secret", "DB=secret/app/db#password"], bw.base_env(BAOWRAP_JWT_FILE=str(jwt)),
                             preexec_fn=as_nobody)
        try:
            (child,) = run.child_pids()
            assert Path(f"/proc/{run.pid}/environ").stat().st_uid == 0
            assert Path(f"/proc/{run.pid}/mem").stat().st_uid == 0
            assert Path(f"/proc/{child}/environ").stat().st_uid == 65534
            peek = subprocess.run(["cat", f"/proc/{run.pid}/environ"], preexec_fn=as_nobody, capture_output=True)
            assert peek.returncode != 0 and b"Permission denied" in peek.stderr, peek
            control = subprocess.run(["cat", f"/proc/{child}/environ"], preexec_fn=as_nobody, capture_output=True)
            assert control.returncode == 0 and b"\0DB=" in control.stdout
        finally:
            stop(run)
    finally:
        shutil.rmtree(d)


def core_files(d: Path):
    return [p for p in d.iterdir() if p.name.startswith("core")]


def test_sigabrt_leaves_no_core_file(bw, tmp_path):
    """A crash of the wrapper writes no core although the limit allows one;
    the same crash of a dumpable process in the same place does."""
    pattern = Path("/proc/sys/kernel/core_pattern").read_text().strip()
    if pattern.startswith("|") or "/" in pattern:
        pytest.skip(f"core_pattern {pattern!r} does not write into the working directory")

    def allow_core():
        resource.setrlimit(resource.RLIMIT_CORE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))

    control = subprocess.run([sys.executable, "-c", "import os; os.abort()"], cwd=tmp_path, preexec_fn=allow_core)
    assert control.returncode == -signal.SIGABRT
    assert core_files(tmp_path), "this machine writes no core even for a dumpable process"
    for f in core_files(tmp_path):
        f.unlink()

    run = start_sleeping(bw, ["--secret", "DB=secret/app/db#password"], bw.base_env(), cwd=tmp_path,
                         preexec_fn=allow_core)
    (child,) = run.child_pids()
    os.kill(run.pid, signal.SIGABRT)
    r = run.finish()
    os.kill(child, signal.SIGKILL)
    assert r.returncode == -signal.SIGABRT, r
    assert core_files(tmp_path) == []


def test_gcore_of_wrapper_holds_no_secret(bw, harness, expected, recorder, tmp_path):
    """Root can still force a core with gdb (ptrace); after the spawn it
    holds nothing secret, while the child's core holds the values."""
    refs = VALUE_REFS[:4]
    before = len(recorder.tokens)
    run = start_sleeping(bw, secret_args(refs), bw.base_env(BAOWRAP_ADDR=recorder.addr))
    try:
        (token,) = [t.encode() for t in recorder.tokens[before:]]
        needles = {**value_needles(expected, refs), **jwt_needles(harness["TOKEN_K8S_VALID"]), "client token": token}
        (child,) = run.child_pids()
        for pid in (run.pid, child):
            subprocess.run(["gcore", "-o", str(tmp_path / "core"), str(pid)], check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120)
        wrapper_core = (tmp_path / f"core.{run.pid}").read_bytes()
        child_core = (tmp_path / f"core.{child}").read_bytes()
        assert len(wrapper_core) > 1_000_000
        assert [k for k, n in needles.items() if n in wrapper_core] == []
        assert TOKEN_SHAPE.search(wrapper_core) is None
        assert expected[refs[0]].encode() in child_core
    finally:
        stop(run)
