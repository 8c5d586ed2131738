"""examples/ cannot rot: every manifest passes the Kubernetes schemas
(strict, offline), every wrapped container's BAOWRAP_* configuration is
parsed by the real binary inside a pod-like root file system, the broker's
nginx configuration proxies for real, examples/openbao/setup.sh configures
the real OpenBao so that a wrapper run succeeds, and the local smoke test
works against it."""
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import kubernetes_validate
import pytest

from conftest import bao_api
from container import needs_root, run_in_container
from manifests import (APP_DOCKERFILE, EXAMPLES, INIT_DOCKERFILE, MANIFESTS, container_id, deployments, dockerfile,
                       documents, materialize, openbao_setup, pod_user, rewrite, secret_variables,
                       wrapped_containers)

SCHEMA_VERSIONS = ["1.29", "1.37"]
FILE_VARIABLES = ["BAOWRAP_CACERT", "BAOWRAP_BROKER_CACERT", "BAOWRAP_CLIENT_CERT", "BAOWRAP_CLIENT_KEY",
                  "BAOWRAP_JWT_FILE"]


def wrapped_params():
    return [pytest.param(*w, id=container_id(w[0], w[1], w[3])) for w in wrapped_containers()]


@pytest.mark.parametrize("version", SCHEMA_VERSIONS)
@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_manifests_pass_the_kubernetes_schema(path, version):
    docs = documents(path)
    assert docs
    for doc in docs:
        kubernetes_validate.validate(doc, version, strict=True)


@pytest.mark.parametrize("name,dep", [pytest.param(n, d, id=f"{n}:{d['metadata']['name']}") for n, d in deployments()])
def test_workloads_are_locked_down(name, dep):
    pod = dep["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    assert pod["automountServiceAccountToken"] is False
    for c in pod.get("initContainers", []) + pod["containers"]:
        sc = c["securityContext"]
        assert sc["allowPrivilegeEscalation"] is False, c["name"]
        assert sc["readOnlyRootFilesystem"] is True, c["name"]
        assert sc["capabilities"]["drop"] == ["ALL"], c["name"]
        assert "limits" in c["resources"], c["name"]


@pytest.mark.parametrize("name,dep,pod,container,argv", wrapped_params())
def test_wrapped_workloads_follow_the_injection_contract(name, dep, pod, container, argv, binary):
    version = subprocess.run([binary, "version"], capture_output=True, text=True, check=True).stdout.split()[1]
    assert "--" in argv and argv.index("--") < len(argv) - 1, "the workload's command follows --"
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    # A short-lived token only OpenBao accepts.
    tokens = [s["serviceAccountToken"] for v in volumes.values() for s in v.get("projected", {}).get("sources", [])
              if "serviceAccountToken" in s]
    assert tokens == [{"audience": "openbao", "expirationSeconds": 600, "path": "token"}]
    if argv[0] == "/baowrap/baowrap":
        inits = [i for i in pod["initContainers"] if i["image"].split("/")[-1].startswith("init:")]
        assert len(inits) == 1
        init = inits[0]
        assert init["image"].endswith(":" + version), "examples use the init image of this version"
        assert "command" not in init and "args" not in init, "the image's entrypoint does the install"
        entrypoint = json.loads(dockerfile(INIT_DOCKERFILE, "ENTRYPOINT")[0])
        install_dir = entrypoint[entrypoint.index("install") + 1]
        init_mount = [m for m in init["volumeMounts"] if m["mountPath"] == install_dir]
        assert len(init_mount) == 1
        shared = volumes[init_mount[0]["name"]]
        assert shared["emptyDir"]["medium"] == "Memory"
        assert mounts["/baowrap"]["name"] == init_mount[0]["name"] and mounts["/baowrap"]["readOnly"] is True
    else:
        # Baked in: Dockerfile.app copies the binary from the init image's path.
        copy = [l for l in dockerfile(APP_DOCKERFILE, "COPY") if l.startswith("--from=baowrap ")]
        init_path = dockerfile(INIT_DOCKERFILE, "COPY")[0].split()[-1]
        assert copy and copy[0].split()[1:] == [init_path, argv[0]]
        assert dockerfile(APP_DOCKERFILE, "FROM")[0].split()[0].endswith(":" + version)


def readable_by(path: Path, uid: int, gids: set) -> bool:
    st = path.stat()
    return bool(st.st_mode & 0o004 or (st.st_gid in gids and st.st_mode & 0o040) or (st.st_uid == uid and st.st_mode & 0o400))


def expected_names(env: dict, flags: list) -> set:
    return set(secret_variables(env, flags))


@pytest.mark.parametrize("name,dep,pod,container,argv", wrapped_params())
def test_wrapper_configuration_parses_in_a_pod_like_root(name, dep, pod, container, argv, binary, tmp_path):
    """The container's BAOWRAP_* settings and flags, checked by the real
    binary (`check --dry-run`) chrooted into a root holding the container's
    volumes as the kubelet would fill them, as the container's user."""
    needs_root()
    uid, gid, fs_group = pod_user(pod, container)
    rootfs = tmp_path / "rootfs"
    volumes = {v["name"]: v for v in pod["volumes"]}
    for m in container["volumeMounts"]:
        materialize(volumes[m["name"]], rootfs / m["mountPath"].lstrip("/"), fs_group)
    installed = rootfs / argv[0].lstrip("/")
    installed.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(binary, installed)
    installed.chmod(0o555)
    env = {e["name"]: e["value"] for e in container["env"]}
    groups = {gid} | ({fs_group} if fs_group is not None else set())
    for var in FILE_VARIABLES:
        if var in env:
            inside = rootfs / env[var].lstrip("/")
            assert inside.is_file(), f"{var}={env[var]} is not provided by any volume of the container"
            assert readable_by(inside, uid, groups), f"{var}={env[var]} is not readable by uid {uid}"
    flags = argv[1:argv.index("--")]
    r = run_in_container(rootfs, [argv[0], *flags, "check", "--dry-run"], user=f"{uid}:{gid}", env=env)
    assert r.returncode == 0, r
    assert b"unknown_variable" not in r.stderr, r.stderr
    rows = r.stdout.decode().splitlines()
    assert rows[0].split() == ["NAME", "SOURCE", "VERSION", "ROUTE", "STATUS"]
    assert {row.split()[0] for row in rows[1:]} == expected_names(env, flags)


# --- the broker's nginx configuration, run for real ------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def broker_docs():
    docs = documents(EXAMPLES / "kubernetes" / "broker.yaml")
    nginx_conf = next(d for d in docs if d["kind"] == "ConfigMap")["data"]["nginx.conf"]
    app = next(d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "my-app")
    container = app["spec"]["template"]["spec"]["containers"][0]
    return nginx_conf, {e["name"]: e["value"] for e in container["env"]}


@pytest.fixture
def broker(harness):
    """The example's nginx.conf with cluster names and mounted files swapped
    for the harness's: OpenBao's TLS listener, its CA, the broker cert, and
    the harness CA as the client CA."""
    conf, _ = broker_docs()
    work = Path(tempfile.mkdtemp(prefix="baowrap-broker-"))
    work.chmod(0o755)  # nginx workers run as nobody
    port, health = free_port(), free_port()
    conf = rewrite(conf, {
        "/tmp/": f"{work}/",
        "/etc/bao-broker/tls/tls.crt": harness["BROKER_CERT"],
        "/etc/bao-broker/tls/tls.key": harness["BROKER_KEY"],
        "/etc/bao-broker/client-ca/ca.crt": harness["CA_CERT"],
        "/etc/bao-broker/openbao-ca/ca.crt": harness["CA_CERT"],
        "server openbao.openbao.svc:8200;": f"server 127.0.0.1:{harness['BAO_TLS_PORT']};",
        "proxy_ssl_name openbao.openbao.svc;": f"proxy_ssl_name {harness['BAO_TLS_SERVER_NAME']};",
        "listen 8443 ssl;": f"listen 127.0.0.1:{port} ssl;",
        "listen 8081;": f"listen 127.0.0.1:{health};",
    })
    (work / "nginx.conf").write_text(conf)
    log = open(work / "nginx.out", "wb")
    proc = subprocess.Popen(["nginx", "-p", f"{work}/", "-c", str(work / "nginx.conf"), "-g", "daemon off;"],
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{health}/healthz", timeout=2) as r:
                    assert r.read() == b"ok\n"
                    break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, (work / "nginx.out").read_text()
                time.sleep(0.1)
        yield {"addr": f"https://127.0.0.1:{port}", "out": work / "nginx.out"}
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()
        shutil.rmtree(work, ignore_errors=True)


def curl(harness, url, *extra):
    r = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--cacert", harness["CA_CERT"], *extra, url],
                       capture_output=True, text=True, timeout=30)
    return r.stdout


def test_broker_example_forwards_baowrap_over_mtls(bw, harness, broker, expected):
    _, env = broker_docs()
    assert env["BAOWRAP_CONNECT"] == "auto"
    prefix = env["BAOWRAP_BROKER_ADDR"].split("/", 3)[3]
    env = bw.base_env(
        BAOWRAP_BROKER_ADDR=f"{broker['addr']}/{prefix}", BAOWRAP_CONNECT=env["BAOWRAP_CONNECT"],
        BAOWRAP_BROKER_CACERT=harness["CA_CERT"],
        BAOWRAP_CLIENT_CERT=harness["CLIENT_CERT"], BAOWRAP_CLIENT_KEY=harness["CLIENT_KEY"])
    r, child = bw.child_env(["--secret", "DB_PASSWORD=secret/app/db#password"], env=env)
    assert r.returncode == 0, r
    assert child[b"DB_PASSWORD"] == expected["secret/app/db#password"].encode()
    routes = [l.get("route") for l in r.logs if l.get("event") == "route"]
    assert routes == ["broker"]
    # The access log names the caller and the outcome, never a secret path.
    access = broker["out"].read_text()
    assert " 200 " in access and "CN=" in access
    assert "secret/" not in access and "/v1/" not in access


def test_broker_example_refuses_what_baowrap_does_not_need(harness, broker):
    mtls = ["--cert", harness["CLIENT_CERT"], "--key", harness["CLIENT_KEY"]]
    base = broker["addr"] + "/openbao/v1/"
    assert curl(harness, base + "sys/internal/ui/mounts/secret") == "400", "no client certificate, no entry"
    assert curl(harness, base + "sys/internal/ui/mounts/secret", *mtls) in ("200", "403")
    assert curl(harness, base + "sys/policies/acl", *mtls) == "404"
    assert curl(harness, base + "auth/token/create", *mtls, "-X", "POST") == "404"
    assert curl(harness, base + "secret/data/app/db", *mtls, "-X", "POST", "-d", "{}") == "403"


# --- examples/openbao/setup.sh against the real server --------------------

@pytest.fixture(scope="module")
def setup_role(harness):
    """setup.sh run twice (it must converge) on a fresh auth mount, for the
    harness's ServiceAccount default/app and two of its secret paths."""
    suffix = os.urandom(3).hex()
    params = {
        "AUTH_PATH": f"k8s-example-{suffix}", "ROLE": f"example-{suffix}",
        "NAMESPACE": harness["K8S_NAMESPACE"], "SERVICE_ACCOUNT": harness["K8S_SERVICE_ACCOUNT"],
        "AUDIENCE": harness["K8S_AUDIENCE"], "SECRET_PATHS": "secret/app/db kv1/app",
    }
    for _ in range(2):
        r = openbao_setup(harness, **params)
        assert r.returncode == 0, r.stderr
    assert f"BAOWRAP_ROLE={params['ROLE']}" in r.stdout
    return params


def test_setup_role_is_least_privilege_with_short_ttls(harness, setup_role):
    status, role = bao_api(harness, "GET", f"auth/{setup_role['AUTH_PATH']}/role/{setup_role['ROLE']}")
    assert status == 200, role
    d = role["data"]
    assert d["bound_service_account_names"] == [setup_role["SERVICE_ACCOUNT"]]
    assert d["bound_service_account_namespaces"] == [setup_role["NAMESPACE"]]
    assert d["audience"] == setup_role["AUDIENCE"]
    assert d["token_policies"] == [f"{setup_role['ROLE']}-read"]
    assert d["token_no_default_policy"] is True
    assert d["token_ttl"] <= 300 and 0 < d["token_max_ttl"] <= 600


def setup_env(bw, setup_role, **extra):
    return bw.base_env(BAOWRAP_AUTH_PATH=setup_role["AUTH_PATH"], BAOWRAP_ROLE=setup_role["ROLE"], **extra)


def test_wrapper_runs_with_the_role_setup_created(bw, harness, setup_role, expected):
    r, child = bw.child_env(["--secret", "DB_PASSWORD=secret/app/db#password", "--secret", "API_TOKEN=kv1/app/api#token"],
                            env=setup_env(bw, setup_role))
    assert r.returncode == 0, r
    assert child[b"DB_PASSWORD"] == expected["secret/app/db#password"].encode()
    assert child[b"API_TOKEN"] == expected["kv1/app/api#token"].encode()
    # The policy grants revoke-self: no token of this role outlives the start.
    assert live_logins(harness, setup_role["AUTH_PATH"]) == 0


def live_logins(harness, auth_path) -> int:
    status, listing = bao_api(harness, "GET", "auth/token/accessors?list=true")
    assert status == 200, listing
    count = 0
    for accessor in listing["data"]["keys"]:
        status, token = bao_api(harness, "POST", "auth/token/lookup-accessor", {"accessor": accessor})
        if status == 200 and token["data"]["path"].startswith(f"auth/{auth_path}/login"):
            count += 1
    return count


def test_setup_role_reads_nothing_else(bw, setup_role):
    r = bw.run(["--secret", "X=secret/app/versioned#value", "--", "true"], env=setup_env(bw, setup_role))
    assert r.returncode == 125 and r.error_classes() == ["permission_denied"], r


@pytest.mark.parametrize("token", ["TOKEN_K8S_WRONG_AUD", "TOKEN_K8S_INTRUDER"])
def test_setup_role_refuses_other_identities(bw, harness, setup_role, token):
    r = bw.run(["--secret", "X=secret/app/db#password", "--", "true"],
               env=setup_env(bw, setup_role, BAOWRAP_JWT_FILE=harness[token]))
    assert r.returncode == 125 and r.error_classes() == ["auth_denied"], r


# --- examples/local ----------------------------------------------------------

def smoke(bw, binary, *args):
    env = bw.base_env(BAOWRAP=str(binary))
    return subprocess.run([EXAMPLES / "local" / "smoke-test.sh", *args], env=env, capture_output=True, timeout=120)


def test_local_smoke_test_counts_every_variable(bw, binary):
    p = smoke(bw, binary, "--secret", "DB_PASSWORD=secret/app/db#password", "--from-path", "API_=kv1/app/api")
    bw.assert_no_secret(p.stdout + p.stderr, p)
    assert p.returncode == 0, p
    out = p.stdout.decode()
    assert "DB_PASSWORD: 1" in out and "API_TOKEN: 1" in out and out.rstrip().endswith("ok: every secret reached the child's environment")


def test_local_smoke_test_fails_on_a_missing_secret(bw, binary):
    p = smoke(bw, binary, "--secret", "DB_PASSWORD=secret/app/db#password", "--secret", "NOPE=secret/app/nope#x")
    assert p.returncode == 1, p
    assert b"not_found" in p.stdout and b"ok:" not in p.stdout
