"""Fixtures for the pod end-to-end tests. The harness, binary and
canary-check helpers are the integration tests' own (Tests/integration/
conftest.py, loaded under another module name), so both suites share them;
manifests.py is shared the same way. Tests/e2e/run.sh starts the harness
and points HARNESS_ENV at it."""
import importlib.util
import os
import secrets
import sys
from pathlib import Path

import pytest

INTEGRATION = Path(__file__).resolve().parents[1] / "integration"
HARNESS_DIR = INTEGRATION.parent / "harness"
sys.path[:0] = [str(INTEGRATION), str(HARNESS_DIR)]
_spec = importlib.util.spec_from_file_location("integration_conftest", INTEGRATION / "conftest.py")
shared = importlib.util.module_from_spec(_spec)
sys.modules["integration_conftest"] = shared
_spec.loader.exec_module(shared)

import mint_jwt  # noqa: E402  (Tests/harness, on the path above)
from manifests import REPO, openbao_setup, secret_variables  # noqa: E402
from pods import Pod, build_app_image, cluster_hosts, example_pods, plain_app_image, unpack_oci  # noqa: E402

harness = shared.harness
binary = shared.binary
fault = shared.fault


def pytest_collection_modifyitems(items):
    if os.geteuid() != 0:
        for item in items:
            item.add_marker(pytest.mark.skip(reason="namespaces, chroot and mounts need root (CI runs as root)"))


@pytest.fixture(scope="session")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("e2e")


@pytest.fixture(scope="session")
def specs() -> dict:
    return example_pods()


@pytest.fixture(scope="session")
def ca_pem(harness) -> bytes:
    return Path(harness["CA_CERT"]).read_bytes()


@pytest.fixture(scope="session")
def init_image(work):
    archive = Path(os.environ.get("BAOWRAP_IMAGE", REPO / "dist" / "baowrap-init.oci.tar"))
    assert archive.exists(), f"{archive} missing: run `make image` first"
    return unpack_oci(archive, work / "init-image")


@pytest.fixture(scope="session")
def images(work, specs, init_image, ca_pem) -> dict:
    """The app image of each pod. The injection example's image is any image
    (here: the bare base with the test app); the entrypoint example's is
    built from Dockerfile.app."""
    hosts = cluster_hosts(specs.values())
    return {"injection": plain_app_image(work / "app-image", hosts, ca_pem),
            "entrypoint": build_app_image(work / "app-baowrap-image", init_image, hosts, ca_pem)}


@pytest.fixture(scope="session")
def seeded(harness, specs) -> dict:
    """OpenBao configured as the examples' comments say (examples/openbao/
    setup.sh for the pods' role, ServiceAccount and audience) and every
    secret the pods reference written with a fresh random value.
    Returns REF -> value."""
    values = {}
    for spec in specs.values():
        for ref in secret_variables(spec.app_env()).values():
            values.setdefault(ref, f"e2e-{ref.rsplit('#', 1)[1]}-{secrets.token_hex(16)}")
    by_path = {}
    for ref, value in values.items():
        path, key = ref.split("#")
        by_path.setdefault(path, {})[key] = value
    for path, data in by_path.items():
        mount, rest = path.split("/", 1)
        status, body = shared.bao_api(harness, "POST", f"{mount}/data/{rest}", {"data": data})
        assert status == 200, body
    roles = {(s.app_env().get("BAOWRAP_AUTH_PATH", "kubernetes"), s.app_env()["BAOWRAP_ROLE"], s.namespace,
              s.service_account, s.token_source()["audience"]) for s in specs.values()}
    for auth_path, role, namespace, sa, audience in roles:
        r = openbao_setup(harness, AUTH_PATH=auth_path, ROLE=role, NAMESPACE=namespace, SERVICE_ACCOUNT=sa,
                          AUDIENCE=audience, SECRET_PATHS=" ".join(sorted(by_path)))
        assert r.returncode == 0, r.stderr
    return values


@pytest.fixture(scope="session")
def tokens(harness, specs) -> dict:
    """Each pod's projected ServiceAccount token, as the kubelet would get
    it from the API server: signed by the harness's SA key, for the pod's
    namespace, ServiceAccount, audience and lifetime."""
    out = {}
    for key, spec in specs.items():
        sat = spec.token_source()
        claims = mint_jwt.k8s_claims(namespace=spec.namespace, sa=spec.service_account, aud=(sat["audience"],),
                                     exp_in=sat["expirationSeconds"])
        out[key] = mint_jwt.mint(harness["SA_SIGNING_KEY"], claims).encode()
    return out


@pytest.fixture(scope="session")
def canaries(seeded, tokens) -> set:
    """What must never appear in any container's output."""
    jwts = [part for t in tokens.values() for part in shared.jwt_canaries(t)]
    return shared.canary_forms([*seeded.values(), *jwts])


@pytest.fixture(scope="session")
def pods(work, specs, tokens, ca_pem):
    made = {key: Pod(spec, work / key, tokens[key], ca_pem) for key, spec in specs.items()}
    yield made
    for p in made.values():
        p.close()
