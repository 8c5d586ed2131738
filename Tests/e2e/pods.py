"""The kubelet's side of the e2e tests: images (the init image from its OCI
archive, the app images built as their Dockerfiles say), a pod's volumes,
and each container's argv, environment, user and mounts, all read from the
example manifests (examples/kubernetes/*.yaml) so the examples and these
tests cannot drift apart."""
import json
import re
import shutil
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from manifests import APP_DOCKERFILE, dockerfile, materialize, pod_user, wrapped_containers
from runtime import Container, Mount

# The test app: one static binary, no libc. Scenarios run as `/bin/sh -c`.
BUSYBOX = Path("/bin/busybox")
# The PATH a distroless base image sets.
BASE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# Where each simulated container can leave files for the test to read.
RESULTS = "/results"


@dataclass
class Image:
    rootfs: Path
    entrypoint: list
    user: str  # "UID:GID", or None when the image sets no USER
    env: dict


def unpack_oci(archive: Path, work: Path) -> Image:
    """The init image as a runtime sees it: `umoci unpack` of the archive's
    only manifest into a bundle (rootfs + runtime config)."""
    layout = work / "layout"
    layout.mkdir(parents=True)
    subprocess.run(["tar", "-xf", archive, "-C", layout], check=True)
    index = json.loads((layout / "index.json").read_text())
    assert len(index["manifests"]) == 1
    tag = index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"]
    subprocess.run(["umoci", "unpack", "--image", f"{layout}:{tag}", work / "bundle"], check=True,
                   capture_output=True)
    process = json.loads((work / "bundle" / "config.json").read_text())["process"]
    env = dict(e.split("=", 1) for e in process.get("env", []))
    return Image(work / "bundle" / "rootfs", process["args"], f"{process['user']['uid']}:{process['user']['gid']}", env)


def files_of(rootfs: Path) -> list:
    """Every non-directory in a root file system, relative to it."""
    return sorted(str(p.relative_to(rootfs)) for p in rootfs.rglob("*") if not p.is_dir() or p.is_symlink())


def base_rootfs(root: Path, hosts: str, ca_pem: bytes):
    """A distroless-like base with no libc: the static test app, /etc/hosts
    (cluster DNS stand-in), a CA bundle, and passwd/group naming nonroot."""
    (root / "bin").mkdir(parents=True)
    shutil.copy(BUSYBOX, root / "bin" / "busybox")
    (root / "bin" / "sh").symlink_to("busybox")
    etc = root / "etc"
    (etc / "ssl" / "certs").mkdir(parents=True)
    (etc / "ssl" / "certs" / "ca-certificates.crt").write_bytes(ca_pem)
    (etc / "hosts").write_text(hosts)
    (etc / "passwd").write_text("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n")
    (etc / "group").write_text("root:x:0:\nnonroot:x:65532:\n")
    (root / "tmp").mkdir(mode=0o1777)


def plain_app_image(root: Path, hosts: str, ca_pem: bytes) -> Image:
    """Any app image (the injection example wraps whatever image the app
    has): the base with no USER or ENTRYPOINT of its own."""
    base_rootfs(root, hosts, ca_pem)
    return Image(root, [], None, {"PATH": BASE_PATH})


def build_app_image(root: Path, init: Image, hosts: str, ca_pem: bytes) -> Image:
    """examples/kubernetes/Dockerfile.app on the base above: each COPY as
    written (--from=baowrap reads the init image, the build context's
    `server` is the test app), then its USER and ENTRYPOINT."""
    base_rootfs(root, hosts, ca_pem)
    for line in dockerfile(APP_DOCKERFILE, "COPY"):
        words = line.split()
        options = [w for w in words if w.startswith("--")]
        src, dest = [w for w in words if not w.startswith("--")]
        source = BUSYBOX
        for o in options:
            if o.startswith("--from="):
                assert o == "--from=baowrap", f"unknown stage in {line}"
                source = init.rootfs / src.lstrip("/")
        target = root / dest.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(source, target)
        mode = next((int(o.split("=", 1)[1], 8) for o in options if o.startswith("--chmod=")), None)
        target.chmod(mode if mode is not None else stat.S_IMODE(source.stat().st_mode))
    (user,) = dockerfile(APP_DOCKERFILE, "USER")
    entrypoint = json.loads(dockerfile(APP_DOCKERFILE, "ENTRYPOINT")[-1])
    return Image(root, entrypoint, user, {"PATH": BASE_PATH})


def quantity(q: str) -> str:
    """A Kubernetes memory quantity as tmpfs's size= option."""
    m = re.fullmatch(r"(\d+)(Ki|Mi|Gi)?", q)
    assert m, f"unsupported quantity {q}"
    return m.group(1) + {"Ki": "k", "Mi": "m", "Gi": "g", None: ""}[m.group(2)]


@dataclass
class PodSpec:
    """An example Deployment's pod and its wrapped app container."""
    file: str
    namespace: str
    pod: dict
    app: dict
    wrapper: list  # the app container's argv up to and including `--`

    @property
    def service_account(self) -> str:
        return self.pod["serviceAccountName"]

    def token_source(self) -> dict:
        (sat,) = [s["serviceAccountToken"] for v in self.pod["volumes"]
                  for s in v.get("projected", {}).get("sources", []) if "serviceAccountToken" in s]
        return sat

    def app_env(self) -> dict:
        assert all("value" in e for e in self.app["env"]), "valueFrom is not simulated"
        return {e["name"]: e["value"] for e in self.app["env"]}


def example_pods() -> dict:
    """The two ways into a pod, from their example manifests."""
    out = {}
    for file, dep, pod, container, argv in wrapped_containers():
        key = {"init-container.yaml": "injection", "entrypoint-override.yaml": "entrypoint"}.get(file)
        if key:
            assert key not in out, f"{file}: one wrapped container expected"
            out[key] = PodSpec(file, dep["metadata"]["namespace"], pod, container, argv[:argv.index("--") + 1])
    assert set(out) == {"injection", "entrypoint"}
    return out


def cluster_hosts(specs) -> str:
    """/etc/hosts for the simulated pods: every OpenBao host the examples
    name, on the loopback address where the harness listens."""
    hosts = sorted({urlsplit(s.app_env()["BAOWRAP_ADDR"]).hostname for s in specs})
    return "127.0.0.1 localhost\n" + "".join(f"127.0.0.1 {h}\n" for h in hosts)


class Pod:
    """A pod's volumes on the host, as the kubelet fills them: emptyDir with
    medium Memory is a tmpfs of its sizeLimit, projected volumes hold the
    minted ServiceAccount token and OpenBao's CA."""

    def __init__(self, spec: PodSpec, work: Path, token: bytes, ca_pem: bytes):
        self.spec = spec
        self.tmpfs = []
        self.volumes = {}
        fs_group = spec.pod.get("securityContext", {}).get("fsGroup")
        for v in spec.pod["volumes"]:
            d = work / "volumes" / v["name"]
            d.mkdir(parents=True)
            if v.get("emptyDir", {}).get("medium") == "Memory":
                size = quantity(v["emptyDir"]["sizeLimit"])
                subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0777", "tmpfs", d], check=True)
                self.tmpfs.append(d)
            contents = {spec.token_source()["path"]: token}
            for s in v.get("projected", {}).get("sources", []):
                for item in s.get("configMap", {}).get("items", []):
                    assert s["configMap"]["name"] == "openbao-ca", f"unknown ConfigMap {s['configMap']['name']}"
                    contents[item["path"]] = ca_pem
            materialize(v, d, fs_group, contents)
            self.volumes[v["name"]] = d

    def close(self):
        for d in self.tmpfs:
            subprocess.run(["umount", "-l", d], check=False)

    def container(self, spec: dict, image: Image, argv: list, env: dict, results: Path, name: str) -> Container:
        """`spec` is a container of the pod spec; `argv` and `env` are what
        the kubelet derived from it and the image. `results` is mounted
        read-write at /results for the test to read what the app saw."""
        uid, gid, _ = pod_user(self.spec.pod, spec, image.user)
        sc = spec.get("securityContext", {})
        assert sc.get("capabilities", {}).get("drop") == ["ALL"], "the runtime always drops every capability"
        mounts = [Mount(self.volumes[m["name"]], m["mountPath"], m.get("readOnly", False)) for m in spec["volumeMounts"]]
        results.mkdir(parents=True, exist_ok=True)
        results.chmod(0o777)
        mounts.append(Mount(results, RESULTS, False))
        return Container(name, image.rootfs, argv, {**image.env, **env}, uid, gid, mounts,
                         read_only_root=sc.get("readOnlyRootFilesystem", False),
                         no_new_privs=sc.get("allowPrivilegeEscalation", True) is False)
