"""The binary itself: static linking, portability into an image with nothing
but the binary, `version`, `install`, OpenSSL configuration pinning, and
one-line errors for bad input."""
import json
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

HOSTILE_OPENSSL_CNF = """openssl_conf = openssl_init
[openssl_init]
ssl_conf = ssl_sect
[ssl_sect]
system_default = system_default_sect
[system_default_sect]
MaxProtocol = TLSv1.1
MinProtocol = TLSv1
"""


def test_binary_is_fully_static(binary):
    assert "statically linked" in subprocess.run(["file", binary], capture_output=True, text=True).stdout
    ldd = subprocess.run(["ldd", binary], capture_output=True, text=True)
    assert "not a dynamic executable" in ldd.stdout + ldd.stderr


def test_version_names_libraries(bw):
    r = bw.run(["version"])
    assert r.returncode == 0, r
    out = r.stdout.decode()
    assert out.startswith("baowrap ")
    for field in ("revision:", "libcurl: 7.", "tls: OpenSSL 3."):
        assert field in out


def make_bare_root(tmp: Path, binary: Path, harness: dict, proc: bool) -> Path:
    """A root holding only the binary, a CA file, /etc/hosts and the JWT: no
    libc, no libnss, no shell, no openssl.cnf."""
    root = tmp / "root"
    (root / "etc").mkdir(parents=True)
    shutil.copy(binary, root / "baowrap")
    shutil.copy(harness["CA_CERT"], root / "ca.pem")
    shutil.copy(harness["TOKEN_K8S_VALID"], root / "token")
    (root / "etc" / "hosts").write_text("127.0.0.1 openbao.test\n")
    if proc:
        (root / "proc").mkdir()
    return root


def chroot_check(root: Path, harness: dict, proc: bool):
    port = harness["BAO_TLS_PORT"]
    inner = ["chroot", str(root), "/baowrap", "check", "--addr", f"https://openbao.test:{port}",
             "--ca-cert", "/ca.pem", "--role", harness["K8S_ROLE"], "--jwt-file", "/token",
             "--secret", "DB=secret/app/db#password"]
    if proc:
        cmd = ["unshare", "-m", "--", "sh", "-c", f'mount -t proc proc "{root}/proc" && exec "$@"', "sh", *inner]
    else:
        cmd = inner
    return subprocess.run(cmd, capture_output=True, timeout=60, env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})


@pytest.mark.parametrize("proc", [True, False], ids=["with-proc", "without-proc"])
def test_check_in_bare_chroot_resolves_name_from_hosts_and_verifies_tls(binary, harness, tmp_path, proc):
    root = make_bare_root(tmp_path, binary, harness, proc)
    r = chroot_check(root, harness, proc)
    assert r.returncode == 0, r
    assert b"DB " in r.stdout and r.stdout.rstrip().endswith(b"ok")


def test_hostile_openssl_cnf_in_image_is_ignored(binary, harness, tmp_path):
    root = make_bare_root(tmp_path, binary, harness, proc=False)
    for d in ("etc/ssl", "usr/lib/ssl"):
        (root / d).mkdir(parents=True)
        (root / d / "openssl.cnf").write_text(HOSTILE_OPENSSL_CNF)
    r = chroot_check(root, harness, proc=False)
    assert r.returncode == 0, r


def test_openssl_conf_variable_is_ignored(bw, tmp_path):
    cnf = tmp_path / "hostile.cnf"
    cnf.write_text(HOSTILE_OPENSSL_CNF)
    # The same file does break a program that reads it.
    probe = subprocess.run(["openssl", "s_client", "-connect", bw.h["BAO_TLS_ADDR"].split("//")[1],
                            "-CAfile", bw.h["CA_CERT"]], input=b"", capture_output=True,
                           env={"OPENSSL_CONF": str(cnf), "PATH": os.environ["PATH"]}, timeout=20)
    assert b"alert protocol version" in probe.stdout + probe.stderr
    r = bw.run(["check", "--secret", "DB=secret/app/db#password"], env=bw.base_env(OPENSSL_CONF=str(cnf)))
    assert r.returncode == 0, r


def test_proxy_variables_are_not_used(bw):
    dead = "http://127.0.0.1:9"
    env = bw.base_env(https_proxy=dead, HTTPS_PROXY=dead, http_proxy=dead, ALL_PROXY=dead)
    r = bw.run(["check", "--secret", "DB=secret/app/db#password"], env=env)
    assert r.returncode == 0, r


def test_tls_below_1_2_is_refused(bw, harness, tmp_path):
    """A server that speaks at most TLS 1.1 gets no connection."""
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    server = subprocess.Popen(["openssl", "s_server", "-accept", str(port), "-tls1_1", "-www",
                               "-cert", harness["BAO_SERVER_CERT"], "-key", harness["BAO_SERVER_KEY"],
                               "-cipher", "DEFAULT:@SECLEVEL=0"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
                break
            except OSError:
                import time
                time.sleep(0.05)
        r = bw.run(["check", "--secret", "DB=secret/app/db#password"],
                   env=bw.base_env(BAOWRAP_ADDR=f"https://127.0.0.1:{port}", BAOWRAP_TIMEOUT="5s"))
        assert r.returncode == 125, r
        assert r.error_classes() == ["tls"], r
    finally:
        server.kill()
        server.wait()


# --- install --------------------------------------------------------------

def test_install_copies_itself_atomically_with_mode_0555(bw, binary, tmp_path):
    dest = tmp_path / "vol"
    dest.mkdir()
    r = bw.run(["install", str(dest)])
    assert r.returncode == 0, r
    installed = dest / "baowrap"
    assert stat.S_IMODE(installed.stat().st_mode) == 0o555
    assert installed.read_bytes() == Path(binary).read_bytes()
    assert sorted(p.name for p in dest.iterdir()) == ["baowrap"]  # no temporary left
    assert subprocess.run([installed, "version"], capture_output=True).returncode == 0


def test_install_replaces_an_existing_binary(bw, tmp_path):
    dest = tmp_path / "vol"
    dest.mkdir()
    (dest / "baowrap").write_bytes(b"old")
    assert bw.run(["install", str(dest)]).returncode == 0
    assert (dest / "baowrap").stat().st_size > 1_000_000


def test_install_without_proc_or_shell(binary, tmp_path):
    """An init container built FROM scratch: no shell, no /proc mounted."""
    root = tmp_path / "root"
    (root / "vol").mkdir(parents=True)
    shutil.copy(binary, root / "baowrap")
    r = subprocess.run(["chroot", str(root), "/baowrap", "install", "/vol"], capture_output=True, timeout=30)
    assert r.returncode == 0, r
    assert (root / "vol" / "baowrap").read_bytes() == Path(binary).read_bytes()


def one_error_line(r, cls):
    lines = [l for l in r.stderr.decode().splitlines() if l.strip()]
    assert len(lines) == 1, r
    entry = json.loads(lines[0])
    assert entry["level"] == "error" and entry["class"] == cls, entry
    return entry["msg"]


def test_install_into_missing_directory(bw, tmp_path):
    r = bw.run(["install", str(tmp_path / "nope")])
    assert r.returncode == 125
    assert "nope" in one_error_line(r, "system")


def test_install_into_read_only_directory(binary, tmp_path):
    dest = tmp_path / "ro"
    dest.mkdir()
    r = subprocess.run(["unshare", "-m", "--", "sh", "-c",
                        f'mount -t tmpfs -o ro tmpfs "{dest}" && exec "$0" install "{dest}"', str(binary)],
                       capture_output=True, timeout=30)
    assert r.returncode == 125, r
    assert "Read-only file system" in one_error_line(r, "system")


# --- bad input: one line, a class, exit 125, nothing started ----------------

@pytest.mark.parametrize("extra,env_over,needle", [
    (["--ca-cert", "/nonexistent/ca.pem"], {}, "/nonexistent/ca.pem"),
    (["--ca-cert", "relative/ca.pem"], {}, "working directory"),
    ([], {"BAOWRAP_ADDR": "not a url"}, "BAOWRAP_ADDR"),
    ([], {"BAOWRAP_ADDR": "https://openbao.test:99999"}, "bad port"),
    ([], {"BAOWRAP_TIMEOUT": "30"}, "BAOWRAP_TIMEOUT"),
    (["--bogus"], {}, "unknown option --bogus"),
    (["--secret", "DB=secret#password"], {}, "mount and a path"),
], ids=["missing-ca", "relative-ca", "unparsable-url", "bad-port", "bare-duration", "unknown-option", "bad-ref"])
def test_bad_configuration_is_one_line_and_starts_nothing(bw, tmp_path, extra, env_over, needle):
    marker = tmp_path / "started"
    args = ["--secret", "DB=secret/app/db#password", *extra, "--", "touch", str(marker)]
    r = bw.run(args, env=bw.base_env(**env_over))
    assert r.returncode == 125, r
    assert needle in one_error_line(r, "config")
    assert not marker.exists()
