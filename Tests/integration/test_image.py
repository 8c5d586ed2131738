"""The init image as `make image` builds it (init-image/build.sh, umoci, no
daemon): reproducible to the byte, shaped as init-image/Dockerfile says, and
its entrypoint really installs the binary when run like a container would
run it."""
import hashlib
import json
import os
import re
import shutil
import stat
import subprocess
import tarfile
import time
from pathlib import Path

import pytest

from container import needs_root, run_in_container

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "init-image" / "Dockerfile"


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def dockerfile_instruction(name: str) -> str:
    lines = [l for l in DOCKERFILE.read_text().splitlines() if l.startswith(name + " ")]
    assert len(lines) == 1, f"expected one {name} in {DOCKERFILE}"
    return lines[0][len(name) + 1:].strip()


@pytest.fixture(scope="module")
def builds(binary, tmp_path_factory):
    """Two builds of the same binary as two machines would make them: from
    different paths, with different file times, umasks and wall clocks."""
    subprocess.run([REPO / "scripts" / "install-deps.sh", "image"], check=True)
    d = tmp_path_factory.mktemp("image")
    second = d / "copy" / "baowrap"
    second.parent.mkdir()
    shutil.copy(binary, second)
    os.utime(second, (1_000_000_000, 1_000_000_000))
    out = []
    for n, (b, umask) in enumerate([(binary, "022"), (second, "077")]):
        if n:
            time.sleep(1.1)  # a different second for every file the build writes
        archive = d / f"init-{n}.oci.tar"
        r = subprocess.run(["sh", "-c", f'umask {umask} && exec "$0" "$1" "$2"', REPO / "init-image" / "build.sh", b, archive],
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        out.append(archive)
    return out


@pytest.fixture(scope="module")
def layout(builds, tmp_path_factory):
    """The archive unpacked with GNU tar; blobs checked against their names."""
    d = tmp_path_factory.mktemp("layout")
    subprocess.run(["tar", "-xf", builds[0], "-C", d], check=True)
    for blob in (d / "blobs" / "sha256").iterdir():
        assert sha256(blob) == blob.name, f"blob {blob.name} does not match its digest"
    index = json.loads((d / "index.json").read_text())
    assert len(index["manifests"]) == 1
    manifest = json.loads((d / "blobs" / "sha256" / index["manifests"][0]["digest"].split(":")[1]).read_text())
    config = json.loads((d / "blobs" / "sha256" / manifest["config"]["digest"].split(":")[1]).read_text())
    return d, index, manifest, config


def test_two_builds_are_identical(builds):
    assert sha256(builds[0]) == sha256(builds[1])


def test_layout_is_an_oci_image_with_one_layer(layout, binary):
    d, index, manifest, config = layout
    assert json.loads((d / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
    version = subprocess.run([binary, "version"], capture_output=True, text=True, check=True).stdout.split()[1]
    assert index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"] == version
    assert index["manifests"][0]["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    assert manifest["config"]["mediaType"] == "application/vnd.oci.image.config.v1+json"
    assert len(manifest["layers"]) == 1
    assert manifest["layers"][0]["mediaType"] == "application/vnd.oci.image.layer.v1.tar+gzip"
    assert len(config["rootfs"]["diff_ids"]) == 1
    assert config["config"]["Labels"]["org.opencontainers.image.version"] == version


def test_config_matches_the_dockerfile(layout):
    _, _, _, config = layout
    c = config["config"]
    assert c["Entrypoint"] == json.loads(dockerfile_instruction("ENTRYPOINT"))
    assert c["Entrypoint"][1:] == ["install", "/baowrap"]
    assert c["User"] == dockerfile_instruction("USER")
    uid, gid = c["User"].split(":")
    assert uid.isdigit() and gid.isdigit() and int(uid) != 0, "USER must be numeric and non-root (runAsNonRoot checks it)"
    assert "Cmd" not in c and "Env" not in c
    copy = dockerfile_instruction("COPY")
    assert copy.split()[-1] == c["Entrypoint"][0]


def test_layer_holds_only_the_binary(layout, binary):
    d, _, manifest, config = layout
    blob = d / "blobs" / "sha256" / manifest["layers"][0]["digest"].split(":")[1]
    raw = subprocess.run(["gzip", "-dc", blob], capture_output=True, check=True).stdout
    assert "sha256:" + hashlib.sha256(raw).hexdigest() == config["rootfs"]["diff_ids"][0]
    entrypoint = config["config"]["Entrypoint"][0].lstrip("/")
    with tarfile.open(blob) as t:
        members = t.getmembers()
    files = [m for m in members if not m.isdir()]
    assert [m.name for m in files] == [entrypoint], "the image holds the binary and nothing else (no shell)"
    f = files[0]
    assert f.isfile() and f.mode == 0o555 and f.uid == 0 and f.gid == 0
    assert {m.mtime for m in members} == {f.mtime}
    parents = {str(Path(entrypoint).parents[i]) for i in range(len(Path(entrypoint).parents) - 1)}
    assert {m.name.rstrip("/") for m in members if m.isdir()} == parents
    with tarfile.open(blob) as t:
        assert t.extractfile(f).read() == Path(binary).read_bytes()


def unpack_rootfs(layout, tmp_path) -> Path:
    """The image's single layer, unpacked with GNU tar as a runtime would."""
    d, _, manifest, _ = layout
    rootfs = tmp_path / "rootfs"
    rootfs.mkdir()
    blob = d / "blobs" / "sha256" / manifest["layers"][0]["digest"].split(":")[1]
    subprocess.run(["tar", "-xzpf", blob, "-C", rootfs], check=True)
    return rootfs


def test_entrypoint_installs_into_a_volume_as_the_image_user(layout, tmp_path, binary):
    needs_root()
    config = layout[3]
    rootfs = unpack_rootfs(layout, tmp_path)
    # An emptyDir: root-owned, mode 0777.
    volume = tmp_path / "volume"
    volume.mkdir()
    volume.chmod(0o777)
    r = run_in_container(rootfs, config["config"]["Entrypoint"], user=config["config"]["User"], env={},
                         volumes={volume: "/baowrap"})
    assert r.returncode == 0, r
    assert b'"event":"installed"' in r.stderr
    installed = volume / "baowrap"
    st = installed.stat()
    assert stat.S_IMODE(st.st_mode) == 0o555
    assert f"{st.st_uid}:{st.st_gid}" == config["config"]["User"]
    assert installed.read_bytes() == Path(binary).read_bytes()
    assert [p.name for p in volume.iterdir()] == ["baowrap"], "no temporary file left behind"
    v = subprocess.run([installed, "version"], capture_output=True, text=True, timeout=30)
    assert v.returncode == 0 and re.match(r"baowrap \d+\.\d+\.\d+", v.stdout), v


def test_entrypoint_fails_cleanly_without_a_volume(layout, tmp_path):
    needs_root()
    config = layout[3]
    rootfs = unpack_rootfs(layout, tmp_path)
    r = run_in_container(rootfs, config["config"]["Entrypoint"], user=config["config"]["User"], env={})
    assert r.returncode == 125, r
    assert b'"class":"system"' in r.stderr and b"/baowrap" in r.stderr
