"""An injected pod, run without a cluster: baowrapctl rewrites a Deployment,
then a small stand-in for the kubelet runs the pod template it produced the
way a node would. Each container gets its own mount namespace and is
chrooted into an image root, with the manifest's volumes and mounts (an
emptyDir shared by both containers, a projected ServiceAccount token the
"kubelet" mints with the manifest's audience and expiry, a configMap), its
command, args, env, user and read-only root. The init container runs the
real `dist/baowrap` from an init-image layout; the app container runs the
rewritten command against the real harness. Nothing is taken from the
manifest by hand: an injection that is wrong for Kubernetes fails here.

Not simulated: PID namespaces, cgroups, tmpfs for `medium: Memory` (a plain
directory holds the emptyDir). Needs root for mount namespaces; CI has it."""
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import canary_forms, jwt_canaries

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="mount namespaces need root (CI runs as root)")

# The init image (init-image/Dockerfile): the binary outside /baowrap, USER 65532.
INIT_IMAGE_BINARY = "/usr/local/bin/baowrap"
INIT_IMAGE_USER = (65532, 65532)
APP_USER = (10001, 10001)
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# The app writes its argv and environment into an emptyDir the test reads.
APP_SCRIPT = 'printf "%s\\n" "$@" > /out/args && env -0 > /out/env'


def manifest(harness) -> str:
    return yaml.safe_dump({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "app", "namespace": harness["K8S_NAMESPACE"]},
        "spec": {
            "selector": {"matchLabels": {"app": "app"}},
            "template": {
                "metadata": {"labels": {"app": "app"}},
                "spec": {
                    "serviceAccountName": harness["K8S_SERVICE_ACCOUNT"],
                    "automountServiceAccountToken": False,
                    "securityContext": {"runAsUser": APP_USER[0], "runAsGroup": APP_USER[1]},
                    "containers": [{
                        "name": "app",
                        "image": "registry.example.com/app:1",
                        "command": ["/bin/sh", "-c", APP_SCRIPT, "app"],
                        "args": ["one", "two words"],
                        "env": [{"name": "GREETING", "value": "hello"}],
                        "volumeMounts": [
                            {"name": "out", "mountPath": "/out"},
                            {"name": "openbao-ca", "mountPath": "/etc/openbao-ca", "readOnly": True},
                        ],
                        "securityContext": {"readOnlyRootFilesystem": True},
                    }],
                    "volumes": [
                        {"name": "out", "emptyDir": {}},
                        {"name": "openbao-ca", "configMap": {"name": "openbao-ca"}},
                    ],
                },
            },
        },
    }, sort_keys=False)


def inject(baowrapctl, harness, *secrets) -> dict:
    args = ["inject", "--image", "registry.example.com/baowrap/init:0.1.0",
            "--addr", harness["BAO_TLS_ADDR"], "--ca-cert", "/etc/openbao-ca/ca.crt",
            "--role", harness["K8S_ROLE"], "--timeout", "10s", "--projected-token"]
    for s in secrets:
        args += ["--secret", s]
    r = subprocess.run([str(baowrapctl), *args], input=manifest(harness).encode(), capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr.decode()
    return yaml.safe_load(r.stdout)


class Image:
    """A container image as an unpacked root, plus host directories shared
    into it read-only (the app image borrows the host's /usr for its shell)."""

    def __init__(self, root: Path, user, layers=()):
        self.root = root
        self.user = user
        self.layers = list(layers)


def init_image(tmp: Path, binary: Path) -> Image:
    root = tmp / "init-root"
    target = root / INIT_IMAGE_BINARY.lstrip("/")
    target.parent.mkdir(parents=True)
    shutil.copy(binary, target)
    target.chmod(0o555)
    return Image(root, INIT_IMAGE_USER)


def app_image(tmp: Path) -> Image:
    root = tmp / "app-root"
    root.mkdir()
    layers = []
    for name in ("usr", "bin", "sbin", "lib", "lib64"):
        host = Path("/") / name
        if host.is_symlink():
            (root / name).symlink_to(os.readlink(host))
        elif host.is_dir():
            (root / name).mkdir()
            layers.append(host)
    (root / "etc").mkdir()
    for f in ("hosts", "nsswitch.conf", "passwd", "group"):
        if Path("/etc", f).exists():
            shutil.copy(Path("/etc", f), root / "etc" / f)
    return Image(root, (0, 0), layers)


class Kubelet:
    """Runs one pod template's containers the way a node would, as far as
    baowrap can tell."""

    def __init__(self, pod: dict, harness: dict, tmp: Path, namespace: str):
        self.spec = pod["spec"]
        self.h = harness
        self.tmp = tmp
        self.namespace = namespace
        self.tokens = []  # every token minted: none may appear in any output
        self.volumes = {v["name"]: self.make_volume(v) for v in self.spec.get("volumes", [])}

    def make_volume(self, v: dict) -> Path:
        d = self.tmp / "volumes" / v["name"]
        d.mkdir(parents=True)
        if "emptyDir" in v:
            d.chmod(0o777)  # what the kubelet gives an emptyDir
        elif "configMap" in v:
            assert v["configMap"]["name"] == "openbao-ca", v
            shutil.copy(self.h["CA_CERT"], d / "ca.crt")
            (d / "ca.crt").chmod(0o644)
        elif "projected" in v:
            for source in v["projected"]["sources"]:
                sat = source["serviceAccountToken"]
                self.mint_token(d / sat["path"], sat["audience"], sat["expirationSeconds"])
        else:
            raise AssertionError(f"volume type the stand-in does not know: {v}")
        return d

    def mint_token(self, path: Path, audience: str, expiration: int):
        """What the kubelet asks the API server for: a token for the pod's
        ServiceAccount with the projection's audience and lifetime."""
        sys.path.insert(0, str(Path(self.h["MINT_JWT"]).parent))
        try:
            import mint_jwt
        finally:
            sys.path.pop(0)
        claims = mint_jwt.k8s_claims(namespace=self.namespace, sa=self.spec["serviceAccountName"],
                                     sa_uid=self.h["K8S_APP_SA_UID"], aud=(audience,), exp_in=expiration)
        token = mint_jwt.mint(self.h["SA_SIGNING_KEY"], claims)
        self.tokens.append(token)
        path.write_text(token)
        path.chmod(0o644)

    def run(self, container: dict, image: Image) -> subprocess.CompletedProcess:
        """A private mount namespace: the image root (read-only if asked),
        its layers, the container's volume mounts and /proc; then chroot as
        the container's user into its command and args with its env
        (literal values only: all this manifest uses)."""
        security = {**self.spec.get("securityContext", {}), **container.get("securityContext", {})}
        user = image.user
        if "runAsUser" in security:
            user = (security["runAsUser"], security.get("runAsGroup", security["runAsUser"]))
        env = {"PATH": DEFAULT_PATH, "HOSTNAME": "app-0"}
        for e in container.get("env", []):
            assert set(e) == {"name", "value"}, f"only literal env values are simulated: {e}"
            env[e["name"]] = e["value"]
        argv = container["command"] + container.get("args", [])

        root = image.root
        (root / "proc").mkdir(exist_ok=True)
        q = lambda p: shlex.quote(str(p))  # noqa: E731
        steps = ["set -e"]
        if security.get("readOnlyRootFilesystem"):
            steps += [f"mount --bind {q(root)} {q(root)}", f"mount -o remount,bind,ro {q(root)}"]
        binds = [(layer, root / layer.name, True) for layer in image.layers]
        for m in container.get("volumeMounts", []):
            target = root / m["mountPath"].lstrip("/")
            target.mkdir(parents=True, exist_ok=True)  # the runtime creates mount points
            binds.append((self.volumes[m["name"]], target, bool(m.get("readOnly"))))
        for source, target, read_only in binds:
            steps.append(f"mount --bind {q(source)} {q(target)}")
            if read_only:
                steps.append(f"mount -o remount,bind,ro {q(target)}")
        steps.append(f"mount -t proc proc {q(root / 'proc')}")
        steps.append("exec env -i " + " ".join(q(f"{k}={v}") for k, v in env.items())
                     + f" chroot --userspec={user[0]}:{user[1]} {q(root)} " + " ".join(q(a) for a in argv))
        return subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", "\n".join(steps)],
                              capture_output=True, timeout=60)


def run_pod(bw, baowrapctl, binary, harness, tmp_path, *secrets):
    """Injects, runs the init container, then the app container; returns
    the app's result and the output volume."""
    deployment = inject(baowrapctl, harness, *secrets)
    pod = deployment["spec"]["template"]
    kubelet = Kubelet(pod, harness, tmp_path, deployment["metadata"]["namespace"])

    tokens = canary_forms([part for t in kubelet.tokens for part in jwt_canaries(t.encode())])

    (init,) = pod["spec"]["initContainers"]
    r = kubelet.run(init, init_image(tmp_path, binary))
    bw.assert_no_secret(r.stdout + r.stderr, r, tokens)
    assert r.returncode == 0, r.stderr.decode()
    installed = kubelet.volumes["baowrap"] / "baowrap"
    assert installed.stat().st_mode & 0o777 == 0o555
    assert installed.read_bytes() == binary.read_bytes()

    (app,) = pod["spec"]["containers"]
    r = kubelet.run(app, app_image(tmp_path))
    bw.assert_no_secret(r.stdout + r.stderr, r, tokens)
    return r, kubelet.volumes["out"]


def test_injected_pod_starts_the_command_with_the_secret(bw, baowrapctl, binary, harness, expected, tmp_path):
    r, out = run_pod(bw, baowrapctl, binary, harness, tmp_path,
                     "DB_PASSWORD=secret/app/db#password", "API_TOKEN=kv1/app/api#token")
    assert r.returncode == 0, r.stderr.decode()
    child = dict(e.split(b"=", 1) for e in (out / "env").read_bytes().split(b"\0") if b"=" in e)
    assert child[b"DB_PASSWORD"] == expected["secret/app/db#password"].encode()
    assert child[b"API_TOKEN"] == expected["kv1/app/api#token"].encode()
    assert child[b"GREETING"] == b"hello"
    assert not any(k.startswith(b"BAOWRAP_") for k in child)
    # args stay args, after the original command's own argv.
    assert (out / "args").read_text() == "one\ntwo words\n"


def test_injected_pod_with_a_missing_secret_never_starts_the_command(bw, baowrapctl, binary, harness, tmp_path):
    r, out = run_pod(bw, baowrapctl, binary, harness, tmp_path, "DB_PASSWORD=secret/app/does-not-exist#password")
    assert r.returncode == 125
    assert "not_found" in r.stderr.decode()
    assert not (out / "env").exists()
