"""baowrapctl inject as a user runs it: the built binary against the golden
fixtures (same bytes as the unit tests' in-process runs), its output checked
against the Kubernetes API schemas offline, and its all-or-nothing writes."""
import json
import os
import subprocess
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from conftest import REPO

FIXTURES = REPO / "Tests" / "BaoWrapCtlTests" / "Fixtures"
CASES = sorted(p.name for p in FIXTURES.iterdir() if p.is_dir())
# The oldest and newest API versions the validator bundles.
KUBERNETES_VERSIONS = ["1.25.0", kubernetes_validate.latest_version()]
# Kinds inject passes through that have no schema in the core API.
NO_SCHEMA = {("argoproj.io/v1alpha1", "Rollout")}


def ctl(binary, *args, input=None, cwd=None):
    return subprocess.run([str(binary), *args], input=input, capture_output=True, timeout=60, cwd=cwd)


def case_files(name):
    d = FIXTURES / name
    args = (d / "args").read_text().splitlines()
    source = next(d / f for f in ("input.yaml", "input.json") if (d / f).exists())
    output = next((d / f for f in ("output.yaml", "output.json") if (d / f).exists()), None)
    return args, source, output


def objects(path: Path):
    """Every object in a manifest file, List items included (a typed list's
    items get the kind and apiVersion the list implies)."""
    text = path.read_text()
    docs = [json.loads(text)] if path.suffix == ".json" else list(yaml.safe_load_all(text))
    for doc in docs:
        if doc is None:
            continue
        kind = doc.get("kind", "")
        if kind.endswith("List") and isinstance(doc.get("items"), list):
            for item in doc["items"]:
                if kind != "List":
                    item = {"kind": kind[:-4], "apiVersion": doc["apiVersion"], **item}
                yield item
        else:
            yield doc


@pytest.mark.parametrize("name", CASES)
def test_binary_matches_golden(baowrapctl, name):
    args, source, output = case_files(name)
    r = ctl(baowrapctl, "inject", "-f", str(source), *args)
    if output:
        assert r.returncode == 0, r.stderr.decode()
        assert r.stdout == output.read_bytes()
        assert r.stderr == b""
    else:
        expected = (FIXTURES / name / "error.txt").read_text()
        assert r.returncode == 125
        assert r.stdout == b"", "nothing is written on error"
        assert r.stderr.decode() == "baowrapctl: config: " + expected


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_injected_manifests_validate_against_kubernetes_schemas(version):
    checked = 0
    for name in CASES:
        _, _, output = case_files(name)
        if output is None:
            continue
        for obj in objects(output):
            if (obj.get("apiVersion"), obj.get("kind")) in NO_SCHEMA:
                continue
            kubernetes_validate.validate(obj, version, strict=True)
            checked += 1
    # Every workload kind inject rewrites was among them.
    kinds = {o["kind"] for n in CASES if case_files(n)[2] for o in objects(case_files(n)[2])}
    assert {"Pod", "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob"} <= kinds
    assert checked >= 20


def test_schema_check_catches_a_broken_mount():
    """The validator is strict enough to matter: one misspelt field fails."""
    _, _, output = case_files("pod")
    pod = next(objects(output))
    mount = pod["spec"]["containers"][0]["volumeMounts"][-1]
    mount["mountPth"] = mount.pop("mountPath")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(pod, KUBERNETES_VERSIONS[-1], strict=True)


def test_stdin_to_stdout_and_in_place_rewrite_keeps_mode(baowrapctl, tmp_path):
    args, source, output = case_files("deployment")
    r = ctl(baowrapctl, "inject", *args, input=source.read_bytes())
    assert r.returncode == 0 and r.stdout == output.read_bytes()

    target = tmp_path / "deploy.yaml"
    target.write_bytes(source.read_bytes())
    target.chmod(0o640)
    r = ctl(baowrapctl, "inject", "-f", str(target), "-o", str(target), *args)
    assert r.returncode == 0, r.stderr
    assert r.stdout == b""
    assert target.read_bytes() == output.read_bytes()
    assert target.stat().st_mode & 0o777 == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["deploy.yaml"], "no temporary file left"


@pytest.mark.parametrize("name", ["missing-command", "not-yaml", "no-containers", "volume-conflict"])
def test_error_leaves_output_file_untouched(baowrapctl, tmp_path, name):
    args, source, _ = case_files(name)
    target = tmp_path / "out.yaml"
    target.write_text("previous content\n")
    r = ctl(baowrapctl, "inject", "-f", str(source), "-o", str(target), *args)
    assert r.returncode == 125
    assert r.stdout == b""
    assert len(r.stderr.decode().splitlines()) == 1
    assert target.read_text() == "previous content\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.yaml"]


def test_missing_command_names_the_container_and_the_fix(baowrapctl):
    args, source, _ = case_files("missing-command")
    r = ctl(baowrapctl, "inject", "-f", str(source), *args)
    err = r.stderr.decode()
    assert r.returncode == 125
    assert 'container "web" has no command' in err
    assert "--command-for web='[" in err


@pytest.mark.parametrize("data,message", [
    (b"\xff\xfeapiVersion: v1\n", "not UTF-8"),
    (b"kind: [\n", "not valid YAML or JSON"),
    (b"just a sentence\n", "not a Kubernetes object"),
])
def test_bad_input_is_one_clear_line(baowrapctl, data, message):
    r = ctl(baowrapctl, "inject", "--image", "i", input=data)
    assert r.returncode == 125 and r.stdout == b""
    assert message in r.stderr.decode()


def test_unreadable_file_and_unknown_option(baowrapctl, tmp_path):
    r = ctl(baowrapctl, "inject", "-f", str(tmp_path / "absent.yaml"))
    assert r.returncode == 125
    assert r.stderr.decode().startswith("baowrapctl: system: cannot open")
    r = ctl(baowrapctl, "inject", "--rol", "x")
    assert r.returncode == 125 and "unknown option --rol" in r.stderr.decode()


def test_help_lists_annotations(baowrapctl):
    r = ctl(baowrapctl, "help")
    assert r.returncode == 0
    out = r.stdout.decode()
    for a in ("role", "secrets", "addr", "inject"):
        assert f"baowrap.openbao.org/{a}" in out
