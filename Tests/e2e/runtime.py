"""A container runtime made of Debian tools, doing for one container what
runc does for the kubelet: `unshare` gives it fresh mount and PID
namespaces, `mount` builds its view (read-only root, /dev, /proc of its own
PID namespace, the pod's volumes), `setpriv` sets no_new_privs and empties
the capability sets, and `chroot --userspec` enters the root as the
container's uid/gid and execs the container's argv, which becomes PID 1.
Like runc's create and start, the process waits at a gate (a FIFO) until
the runtime has seen its PID 1, so even a container that exits at once
is observed.

One difference from runc: the last step (chroot + setuid) runs in a tool,
not in the runtime's own process, so the capability bounding set keeps the
three capabilities that step uses (sys_chroot, setuid, setgid). The
effective, permitted, inheritable and ambient sets are empty and
no_new_privs is set, so nothing in the container can hold or regain them.

The network namespace is the host's: the container reaches the harness on
127.0.0.1, and /etc/hosts in its root stands in for cluster DNS."""
import errno
import os
import shlex
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from integration_conftest import Result, assert_no_canary

LAUNCH_CAPS = ("sys_chroot", "setuid", "setgid")
LAUNCH_CAP_BITS = (1 << 18) | (1 << 7) | (1 << 6)
DEVICES = ("null", "zero", "full", "random", "urandom")


def tool(name: str) -> str:
    path = shutil.which(name, path="/usr/sbin:/usr/bin:/sbin:/bin")
    assert path, f"{name} missing (scripts/install-deps.sh e2e)"
    return path


@dataclass
class Mount:
    source: Path
    target: str
    read_only: bool


@dataclass
class Container:
    """What the kubelet hands the runtime: a root file system, the argv,
    the environment, the user and the mounts, plus the securityContext
    settings the examples use."""
    name: str
    rootfs: Path
    argv: list
    env: dict
    uid: int
    gid: int
    mounts: list = field(default_factory=list)
    read_only_root: bool = True
    no_new_privs: bool = True

    def setup_script(self, gate: Path) -> str:
        root = shlex.quote(str(self.rootfs))
        lines = ["set -e"]
        if self.read_only_root:
            lines += [f"mount --bind {root} {root}", f"mount -o remount,bind,ro {root}"]
        lines.append(f"mount -t tmpfs -o nosuid,mode=0755,size=64k tmpfs {root}/dev")
        for d in DEVICES:
            lines += [f": > {root}/dev/{d}", f"mount --bind /dev/{d} {root}/dev/{d}"]
        for m in self.mounts:
            target = shlex.quote(str(self.rootfs / m.target.lstrip("/")))
            lines.append(f"mount --bind {shlex.quote(str(m.source))} {target}")
            if m.read_only:
                lines.append(f"mount -o remount,bind,ro {target}")
        # Mounted by this shell, PID 1 of the new namespace: /proc shows it.
        lines.append(f"mount -t proc -o nosuid,nodev,noexec proc {root}/proc")
        # Created, not started (runc's create/start): wait until the runtime
        # has seen PID 1, then exec the container's process in its place.
        lines += [f": < {shlex.quote(str(gate))}", 'exec "$@"']
        return "\n".join(lines)

    def start(self, logs: Path, canaries=()) -> "Running":
        for target in ["proc", "dev", *(m.target.lstrip("/") for m in self.mounts)]:
            (self.rootfs / target).mkdir(parents=True, exist_ok=True)
        privileges = [tool("setpriv"), "--inh-caps=-all", "--ambient-caps=-all",
                      "--bounding-set=-all," + ",".join("+" + c for c in LAUNCH_CAPS)]
        if self.no_new_privs:
            privileges.append("--no-new-privs")
        launch = [tool("env"), "-i", *(f"{k}={v}" for k, v in self.env.items()), *privileges, "--",
                  tool("chroot"), f"--userspec={self.uid}:{self.gid}", str(self.rootfs), *self.argv]
        logs.mkdir(parents=True, exist_ok=True)
        gate = logs / f"{self.name}.start"
        os.mkfifo(gate)
        argv = [tool("unshare"), "--mount", "--pid", "--fork", "--propagation", "private", "--",
                tool("sh"), "-c", self.setup_script(gate), self.name, *launch]
        return Running(self, argv, logs, gate, canaries)


class Running:
    """A started container. `pid1` is its PID 1 as the host sees it."""

    def __init__(self, container: Container, argv, logs: Path, gate: Path, canaries):
        self.container = container
        self.canaries = canaries
        self.out_path, self.err_path = logs / f"{container.name}.out", logs / f"{container.name}.err"
        with open(self.out_path, "wb") as out, open(self.err_path, "wb") as err:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                         env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})
        self.started = time.monotonic()
        self.pid1 = self.until(self._first_child, "the container's PID 1 to exist")
        self.pidns = os.readlink(f"/proc/{self.pid1}/ns/pid")
        self.until(lambda: self._open_gate(gate), "the container's setup")

    @staticmethod
    def _open_gate(gate: Path):
        try:
            os.close(os.open(gate, os.O_WRONLY | os.O_NONBLOCK))
            return True
        except OSError as e:
            if e.errno == errno.ENXIO:
                return None  # the setup has not reached the gate yet
            raise

    def _first_child(self):
        try:
            children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()
        except FileNotFoundError:
            children = []
        return int(children[0]) if children else None

    def until(self, probe, what: str, limit=30):
        """Polls `probe` until it returns a value; the limit only catches hangs."""
        end = time.monotonic() + limit
        while time.monotonic() < end:
            value = probe()
            if value is not None:
                return value
            assert self.proc.poll() is None, f"{self.container.name} exited ({self.proc.returncode}) before {what}: {self.stderr()!r}"
            time.sleep(0.02)
        raise AssertionError(f"timed out waiting for {what}: {self.stderr()!r}")

    def wait_for(self, path: Path, limit=30):
        self.until(lambda: True if path.exists() else None, f"{path}", limit)

    def stderr(self) -> bytes:
        return self.err_path.read_bytes()

    def processes(self) -> dict:
        """host pid -> (state, host ppid, /proc status) for every process in
        the container's PID namespace."""
        out = {}
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                if os.readlink(f"/proc/{entry}/ns/pid") != self.pidns:
                    continue
                status = Path(f"/proc/{entry}/status").read_text()
            except OSError:
                # Gone meanwhile, or a process of the machine's own
                # supervisor that not even root may inspect: not ours.
                continue
            fields = dict(l.split(":\t", 1) for l in status.splitlines() if ":\t" in l)
            out[int(entry)] = (fields["State"][0], int(fields["PPid"]), fields)
        return out

    def children_of_pid1(self) -> list:
        return [int(p) for p in Path(f"/proc/{self.pid1}/task/{self.pid1}/children").read_text().split()]

    def signal(self, sig: int):
        """What the kubelet's stop does through the runtime: a signal to the
        container's PID 1, sent from outside its namespace."""
        os.kill(self.pid1, sig)

    def finish(self, timeout=60) -> Result:
        """Waits for the container to end (SIGKILL to its PID 1 on timeout,
        which ends its whole PID namespace) and checks its output for
        secrets."""
        try:
            self.proc.wait(timeout=timeout)
        finally:
            if self.proc.poll() is None:
                try:
                    os.kill(self.pid1, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait(timeout=30)
        self.elapsed = time.monotonic() - self.started
        r = Result(subprocess.CompletedProcess(self.proc.args, self.proc.returncode,
                                               self.out_path.read_bytes(), self.stderr()))
        assert_no_canary(self.canaries, r.stdout + r.stderr, r)
        return r
