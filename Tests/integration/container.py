"""Runs a program the way a container runtime would: chrooted into a root
file system, in a private mount namespace with /proc mounted (every runtime
mounts it, and a static Swift binary needs it), with host directories
bind-mounted as volumes, as a numeric user. Needs root (CI runs as root)."""
import os
import shlex
import subprocess
from pathlib import Path

import pytest


def run_in_container(rootfs: Path, argv, *, user: str, env: dict, volumes=None, timeout=60):
    """user is "UID:GID"; volumes maps host directory -> path inside."""
    script = ["set -e", f"mount -t proc proc {shlex.quote(str(rootfs / 'proc'))}"]
    (rootfs / "proc").mkdir(exist_ok=True)
    for host, inside in (volumes or {}).items():
        target = rootfs / inside.lstrip("/")
        target.mkdir(parents=True, exist_ok=True)
        script.append(f"mount --bind {shlex.quote(str(host))} {shlex.quote(str(target))}")
    chroot = ["chroot", f"--userspec={user}", str(rootfs), *argv]
    script.append("exec " + " ".join(shlex.quote(a) for a in chroot))
    full_env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", **env}
    return subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", "\n".join(script)],
                          env=full_env, capture_output=True, timeout=timeout)


def needs_root():
    if os.geteuid() != 0:
        pytest.skip("chroot and mount namespaces need root (CI runs as root)")
