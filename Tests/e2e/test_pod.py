"""A pod's whole life around baowrap, without a cluster: the init container
from the OCI archive installs the binary into an in-memory volume, then the
app container runs it as PID 1 (init-container injection, and the image
that bakes it in as ENTRYPOINT), with the examples' env, volumes, users and
securityContext, stopped the way the kubelet stops it."""
import signal
import stat
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from manifests import secret_variables
from pods import files_of
from runtime import LAUNCH_CAP_BITS

# The kubelet's terminationGracePeriodSeconds, shortened: long enough to
# show the app outlives SIGTERM, short enough to keep the run fast.
GRACE_SECONDS = 1
# --timeout for the failure paths; HANG_BOUND only catches a hang.
FAILURE_TIMEOUT = 3
HANG_BOUND = 30

# The app's scenarios, as busybox sh scripts. /results is the test's window.
SERVE = """
/bin/busybox env -0 > /results/env
if (: > /probe) 2>/dev/null; then echo writable; else echo read-only; fi > /results/root
trap 'echo TERM > /results/term; exit 0' TERM
echo $$ > /results/pid
: > /results/ready
while :; do sleep 1 & wait $!; done
"""
ORPHANS = """
i=0
while [ $i -lt 5 ]; do
    (sh -c 'while [ ! -e /results/go ]; do sleep 0.05; done' &)
    i=$((i + 1))
done
trap 'exit 0' TERM
echo $$ > /results/pid
: > /results/ready
while :; do sleep 1 & wait $!; done
"""
IGNORES_TERM = """
trap 'echo TERM >> /results/term' TERM
: > /results/ready
while :; do sleep 1 & wait $!; done
"""
CRASHES = "kill -SEGV $$"
NEVER_STARTS = ": > /results/started"


def log(line: str):
    print(f"  e2e: {line}", flush=True)


@pytest.fixture(scope="session")
def installed(pods, specs, init_image, work, canaries):
    """The injection pod's init container, run once: the image's entrypoint
    and user (unless the pod overrides it), its volume mounts, fresh mount
    and PID namespaces."""
    pod = pods["injection"]
    (init,) = specs["injection"].pod["initContainers"]
    assert "command" not in init and "args" not in init, "the image's entrypoint does the install"
    c = pod.container(init, init_image, init_image.entrypoint, {e["name"]: e["value"] for e in init.get("env", [])},
                      work / "injection" / "init-results", "init")
    image_files = files_of(init_image.rootfs)
    r = c.start(work / "logs", canaries).finish()
    log(f"init container {init['name']}: {init_image.entrypoint} as {c.uid}:{c.gid} -> rc {r.returncode}")
    return c, r, image_files


def test_init_container_installs_the_binary_into_the_memory_volume(installed, pods, init_image, binary):
    c, r, image_files = installed
    assert image_files == [init_image.entrypoint[0].lstrip("/")], "the image holds the binary and no shell"
    assert r.returncode == 0, r
    (line,) = r.logs
    assert line["event"] == "installed", r
    mount = next(m for m in c.mounts if m.target == init_image.entrypoint[-1])
    fstypes = {l.split()[4]: l.split(" - ")[1].split()[0] for l in Path("/proc/self/mountinfo").read_text().splitlines()}
    assert fstypes[str(mount.source)] == "tmpfs", "emptyDir medium: Memory"
    installed = mount.source / "baowrap"
    st = installed.stat()
    assert stat.S_IMODE(st.st_mode) == 0o555
    assert (st.st_uid, st.st_gid) == (c.uid, c.gid)
    assert installed.read_bytes() == Path(binary).read_bytes()
    assert [p.name for p in mount.source.iterdir()] == ["baowrap"]


class App:
    """Starts a pod's app container with a test scenario as its command (the
    wrapped command after `--`, as the pod's command or args would give
    it), the manifest's env with the harness's port, and `extra` env."""

    def __init__(self, key, spec, pod, image, seeded, canaries, port, tmp_path):
        self.key, self.spec, self.pod, self.image, self.seeded = key, spec, pod, image, seeded
        self.canaries, self.port, self.tmp = canaries, port, tmp_path
        self.results = tmp_path / "results"

    def start(self, script: str, port=None, **extra):
        addr = self.spec.app_env()["BAOWRAP_ADDR"]
        env = {**self.spec.app_env(), "BAOWRAP_ADDR": addr.replace(f":{urlsplit(addr).port}", f":{port or self.port}"),
               **extra}
        c = self.pod.container(self.spec.app, self.image, [*self.spec.wrapper, "/bin/sh", "-c", script], env,
                               self.results, self.key)
        return c.start(self.tmp / "logs", self.canaries)


@pytest.fixture(params=["injection", "entrypoint"])
def app(request, pods, specs, images, seeded, canaries, harness, tmp_path):
    key = request.param
    if key == "injection":
        request.getfixturevalue("installed")
    return App(key, specs[key], pods[key], images[key], seeded, canaries, harness["BAO_TLS_PORT"], tmp_path)


def status(fields) -> dict:
    return {k: fields[k].strip() for k in ("Uid", "Gid", "Groups", "CapInh", "CapPrm", "CapEff", "CapAmb", "CapBnd",
                                            "NoNewPrivs", "NSpid")}


def assert_unprivileged(fields, uid, gid):
    s = status(fields)
    assert s["Uid"].split() == [str(uid)] * 4 and s["Gid"].split() == [str(gid)] * 4, s
    # The primary group only, as containerd gives a user of the image's /etc/group.
    assert s["Groups"].split() in ([], [str(gid)]), s
    for cap in ("CapInh", "CapPrm", "CapEff", "CapAmb"):
        assert int(s[cap], 16) == 0, s
    assert int(s["CapBnd"], 16) & ~LAUNCH_CAP_BITS == 0, s
    assert s["NoNewPrivs"] == "1", s


def read_env(path: Path) -> dict:
    return dict(e.split(b"=", 1) for e in path.read_bytes().split(b"\0") if b"=" in e)


def host_pid(running, ns_pid: int) -> int:
    return next(p for p, (_, _, f) in running.processes().items() if f["NSpid"].split()[-1] == str(ns_pid))


def test_app_gets_its_secrets_as_pid1_child_and_stops_on_sigterm(app):
    c = app.start(SERVE)
    c.wait_for(app.results / "ready")
    procs = c.processes()
    pid1 = procs[c.pid1][2]
    assert pid1["NSpid"].split()[-1] == "1"
    assert Path(f"/proc/{c.pid1}/cmdline").read_bytes().split(b"\0")[:len(app.spec.wrapper)] == \
        [a.encode() for a in app.spec.wrapper]
    assert_unprivileged(pid1, c.container.uid, c.container.gid)
    app_pid = host_pid(c, int((app.results / "pid").read_text()))
    assert procs[app_pid][1] == c.pid1
    assert_unprivileged(procs[app_pid][2], c.container.uid, c.container.gid)
    assert (app.results / "root").read_text() == "read-only\n"
    mounted = {l.split()[4]: l.split()[5].split(",") for l in Path(f"/proc/{c.pid1}/mountinfo").read_text().splitlines()}
    for target in ["/", *(m.target for m in c.container.mounts if m.read_only)]:
        assert "ro" in mounted[target], (target, mounted)
    assert "/proc" in mounted

    env = read_env(app.results / "env")
    manifest_env = app.spec.app_env()
    for name, ref in secret_variables(manifest_env).items():
        assert env.get(name.encode()) == app.seeded[ref].encode(), f"{name} is not the secret at {ref}"
    assert not [k for k in env if k.startswith(b"BAOWRAP_")]
    for name, value in manifest_env.items():
        if not name.startswith("BAOWRAP_") and name not in secret_variables(manifest_env):
            assert env[name.encode()] == value.encode()

    c.signal(signal.SIGTERM)
    r = c.finish(timeout=HANG_BOUND)
    assert r.returncode == 0, r
    assert (app.results / "term").read_text() == "TERM\n", "SIGTERM reached the app"
    assert not c.processes()
    assert r.stdout == b"" and [l["event"] for l in r.logs] == ["route", "resolved"], r
    log(f"{app.key}: app saw {len(secret_variables(manifest_env))} secrets as uid {c.container.uid}; "
        f"SIGTERM to PID 1 -> exit {r.returncode}; the container ran {c.elapsed:.2f}s")


def test_orphans_are_reaped_by_pid1(app):
    c = app.start(ORPHANS)
    c.wait_for(app.results / "ready")
    app_pid = host_pid(c, int((app.results / "pid").read_text()))

    def orphans():
        found = [p for p, (_, ppid, _) in c.processes().items() if ppid == c.pid1 and p != app_pid]
        return found if len(found) == 5 else None

    adopted = c.until(orphans, "five orphans adopted by PID 1")
    (app.results / "go").touch()

    def settled():
        procs = c.processes()
        left = [p for p, (state, ppid, _) in procs.items() if state == "Z" or (ppid == c.pid1 and p != app_pid)]
        return True if not left else None

    c.until(settled, "the orphans to exit and be reaped")
    c.signal(signal.SIGTERM)
    r = c.finish(timeout=HANG_BOUND)
    assert r.returncode == 0, r
    log(f"{app.key}: {len(adopted)} orphans adopted by PID 1 exited, no zombie left; exit {r.returncode}")


def test_app_ignoring_sigterm_is_killed_after_the_grace_period(app):
    c = app.start(IGNORES_TERM)
    c.wait_for(app.results / "ready")
    c.signal(signal.SIGTERM)
    c.wait_for(app.results / "term")
    time.sleep(GRACE_SECONDS)
    assert c.proc.poll() is None, "baowrap stays while its child runs"
    assert len(c.processes()) >= 2
    c.signal(signal.SIGKILL)
    r = c.finish(timeout=HANG_BOUND)
    # util-linux 2.38's unshare exits 1 when its child died of SIGKILL (it
    # cannot re-raise SIGKILL on itself); either way the runtime returned.
    assert r.returncode in (-signal.SIGKILL, 1), r
    assert not c.processes(), "SIGKILL to PID 1 ends the whole namespace"
    log(f"{app.key}: app ignored SIGTERM; SIGKILL after {GRACE_SECONDS}s grace ended the namespace")


def test_crashing_app_gives_its_signal_status(app):
    c = app.start(CRASHES)
    r = c.finish(timeout=HANG_BOUND)
    assert r.returncode == 128 + signal.SIGSEGV, r
    assert not c.processes()
    log(f"{app.key}: app died of SIGSEGV -> exit {r.returncode}")


def failure(app, c, expected_class: str):
    """Exit 125, the app never started, and what `kubectl logs` shows: one
    JSON error line per secret variable (docs/troubleshooting.md: a failure
    before any read fails every variable), each naming it and the class."""
    r = c.finish(timeout=HANG_BOUND)
    assert r.returncode == 125, r
    assert not (app.results / "started").exists(), "the app never starts"
    assert r.stdout == b""
    lines = r.stderr.decode().splitlines()
    names = set(secret_variables(app.spec.app_env()))
    assert len(lines) == len(names) and r.logs == r.errors() and len(r.logs) == len(lines), r
    assert {l["var"] for l in r.logs} == names, r
    for line in r.logs:
        assert line["class"] == expected_class and line["msg"].startswith(line["var"] + ": "), line
    log(f"{app.key}: exit 125 after {c.elapsed:.2f}s, {len(lines)} lines like: {lines[0]}")
    return r.logs[0]


def names_the_address(app, line, port):
    """The line says where baowrap tried to go and that it gave up."""
    host = urlsplit(app.spec.app_env()["BAOWRAP_ADDR"]).hostname
    assert f"{host}:{port}" in line["msg"] and "--timeout" in line["msg"], line


def test_unreachable_openbao_never_starts_the_app(app, harness):
    closed = harness["BROKEN_UPSTREAM_PORT"]  # nothing listens there
    line = failure(app, app.start(NEVER_STARTS, port=closed, BAOWRAP_TIMEOUT=f"{FAILURE_TIMEOUT}s"), "connect")
    names_the_address(app, line, closed)


def test_openbao_not_answering_stops_at_the_timeout(app, harness, fault):
    fault.mode("blackhole")
    port = harness["FAULT_PORT"]
    line = failure(app, app.start(NEVER_STARTS, port=port, BAOWRAP_TIMEOUT=f"{FAILURE_TIMEOUT}s"), "timeout")
    names_the_address(app, line, port)


def test_wrong_role_is_auth_denied(app, harness):
    role = harness["K8S_ROLE"]  # exists, but binds another ServiceAccount
    line = failure(app, app.start(NEVER_STARTS, BAOWRAP_ROLE=role), "auth_denied")
    assert f"role {role}" in line["msg"]

