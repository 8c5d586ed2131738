"""The examples as data: the Kubernetes manifests and Dockerfiles under
examples/ and init-image/, read the way a kubelet or an image build would
read them, and examples/openbao/setup.sh run against the harness. Shared by
the examples' integration tests and the pod end-to-end tests (Tests/e2e), so
both follow the same files and cannot drift apart from them."""
import json
import os
import re
import subprocess
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
MANIFESTS = sorted((EXAMPLES / "kubernetes").glob("*.yaml"))
INIT_DOCKERFILE = REPO / "init-image" / "Dockerfile"
APP_DOCKERFILE = EXAMPLES / "kubernetes" / "Dockerfile.app"


def documents(path: Path):
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def dockerfile(path: Path, instruction: str) -> list:
    return [l.split(None, 1)[1] for l in path.read_text().splitlines() if l.startswith(instruction + " ")]


def app_image_tag() -> str:
    """The tag Dockerfile.app's build command gives the image."""
    return re.search(r"docker build .*-t (\S+)", APP_DOCKERFILE.read_text()).group(1)


def deployments():
    for path in MANIFESTS:
        for doc in documents(path):
            if doc["kind"] == "Deployment":
                yield path.name, doc


def wrapped_containers():
    """(file, deployment, pod spec, container, baowrap argv) for every
    container that starts through baowrap, by command or by image ENTRYPOINT."""
    out = []
    for name, dep in deployments():
        pod = dep["spec"]["template"]["spec"]
        for c in pod["containers"]:
            if c.get("command", [""])[0].endswith("/baowrap"):
                argv = c["command"] + c.get("args", [])
            elif "command" not in c and c["image"] == app_image_tag():
                argv = json.loads(dockerfile(APP_DOCKERFILE, "ENTRYPOINT")[-1]) + c["args"]
            else:
                continue
            out.append((name, dep, pod, c, argv))
    return out


def container_id(file: str, dep: dict, container: dict) -> str:
    return f"{file}:{dep['metadata']['name']}/{container['name']}"


def pod_user(pod, container, image_user: str = None) -> tuple:
    """(uid, gid, fsGroup) as the kubelet resolves them: the container's
    securityContext, then the pod's, then the image's USER ("UID:GID")."""
    sc = {**pod.get("securityContext", {}), **container.get("securityContext", {})}
    image_uid, image_gid = (int(x) for x in image_user.split(":")) if image_user else (None, None)
    uid = sc.get("runAsUser", image_uid)
    gid = sc.get("runAsGroup", image_gid if "runAsUser" not in sc else uid)
    return uid, gid, pod.get("securityContext", {}).get("fsGroup")


def materialize(volume: dict, directory: Path, fs_group, contents=None):
    """Writes the files the kubelet would put in the volume: root-owned,
    group fsGroup when set, with the volume's modes. Secret volumes without
    items hold a kubernetes.io/tls Secret. `contents` maps a file's path in
    the volume to its bytes; files it does not name get a placeholder."""
    directory.mkdir(parents=True, exist_ok=True)
    if "emptyDir" in volume:
        directory.chmod(0o777)
        return
    if "projected" in volume:
        mode = volume["projected"].get("defaultMode", 0o644)
        files = []
        for s in volume["projected"]["sources"]:
            if "serviceAccountToken" in s:
                files.append(s["serviceAccountToken"]["path"])
            for kind in ("configMap", "secret"):
                files += [i["path"] for i in s.get(kind, {}).get("items", [])]
    elif "secret" in volume:
        mode = volume["secret"].get("defaultMode", 0o644)
        files = [i["path"] for i in volume["secret"].get("items", [])] or ["tls.crt", "tls.key"]
    else:
        mode = volume["configMap"].get("defaultMode", 0o644)
        files = [i["path"] for i in volume["configMap"].get("items", [])]
    for f in files:
        p = directory / f
        p.write_bytes((contents or {}).get(f, b"placeholder: only readability matters to --dry-run\n"))
        os.chown(p, 0, fs_group if fs_group is not None else 0)
        p.chmod(mode)


def secret_variables(env: dict, flags=()) -> dict:
    """NAME -> REF for every secret a wrapped container asks for: entries of
    BAOWRAP_SECRETS and --secret flags, and variables whose whole value is a
    reference."""
    entries = re.split(r"[\n,]", env.get("BAOWRAP_SECRETS", ""))
    entries += [flags[i + 1] for i, f in enumerate(flags) if f == "--secret"]
    out = dict(e.strip().split("=", 1) for e in entries if e.strip())
    out.update({k: v.split(":", 1)[1] for k, v in env.items() if v.startswith(("bao:", "vault:"))})
    return out


def rewrite(text: str, replacements: dict) -> str:
    """Every replacement must apply, so a change to the example that the
    test no longer understands fails here instead of passing silently."""
    for old, new in replacements.items():
        assert old in text, f"{old!r} not found in the example"
        text = text.replace(old, new)
    return text


def openbao_setup(harness, **params) -> subprocess.CompletedProcess:
    """Runs examples/openbao/setup.sh against the harness's OpenBao, with
    the harness's TokenReview stand-in as the Kubernetes API; `params` are
    the script's own parameters (ROLE, NAMESPACE, ...)."""
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/root"),
           "BAO_ADDR": harness["BAO_PLAIN_ADDR"], "BAO_TOKEN": harness["BAO_ROOT_TOKEN"],
           "BAO_BIN": harness["BAO_BIN"], "KUBERNETES_HOST": harness["TOKENREVIEW_ADDR"],
           "KUBERNETES_CA_CERT": harness["CA_CERT"], "DISABLE_LOCAL_CA_JWT": "true", **params}
    return subprocess.run([EXAMPLES / "openbao" / "setup.sh"], env=env, capture_output=True, text=True, timeout=120)
