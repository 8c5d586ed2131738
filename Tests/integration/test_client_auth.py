"""Login and secret resolution against the real OpenBao: kubernetes and jwt
auth, KV v1/v2, versions, every per-secret failure class, namespaces,
--on-missing skip, --from-path, check, and the token's revocation."""
import json
from pathlib import Path

import pytest

from client_support import assert_fails_closed, route_lines, run_marked
from conftest import bao_api


def test_kubernetes_auth_over_tls_with_ca_pinning(bw, expected):
    r, child = bw.child_env(["--secret", "DB=secret/app/db#password", "--secret", "API=kv1/app/api#token"])
    assert r.returncode == 0, r
    assert child[b"DB"] == expected["secret/app/db#password"].encode()
    assert child[b"API"] == expected["kv1/app/api#token"].encode()
    assert [l["route"] for l in route_lines(r)] == ["direct"]


def test_ca_pinning_refuses_a_server_signed_by_another_ca(bw, harness):
    env = bw.base_env(BAOWRAP_CACERT=harness["OTHER_CA_CERT"])
    r = assert_fails_closed(bw, ["--secret", "DB=secret/app/db#password", "--secret", "API=kv1/app/api#token"],
                            {"DB": "tls", "API": "tls"}, env=env)
    assert "certificate" in r.errors()[0]["msg"]


def test_jwt_auth(bw, harness, expected):
    env = bw.base_env(BAOWRAP_JWT_FILE=harness["TOKEN_JWT_VALID"])
    r, child = bw.child_env(["--auth-method", "jwt", "--auth-path", harness["JWT_AUTH_PATH"],
                             "--role", harness["JWT_ROLE"], "--secret", "DB=secret/app/db#password"], env=env)
    assert r.returncode == 0, r
    assert child[b"DB"] == expected["secret/app/db#password"].encode()


def test_jwt_auth_wrong_audience_is_auth_denied(bw, harness):
    env = bw.base_env(BAOWRAP_JWT_FILE=harness["TOKEN_JWT_WRONG_AUD"], BAOWRAP_AUTH_METHOD="jwt",
                      BAOWRAP_AUTH_PATH="jwt", BAOWRAP_ROLE=harness["JWT_ROLE"])
    r = assert_fails_closed(bw, ["--secret", "DB=secret/app/db#password"], {"DB": "auth_denied"}, env=env)
    assert "invalid audience" in r.errors()[0]["msg"]


def test_wrong_role_is_auth_denied(bw):
    r = assert_fails_closed(bw, ["--role", "other", "--secret", "DB=secret/app/db#password",
                                 "--secret", "API=kv1/app/api#token"], {"DB": "auth_denied", "API": "auth_denied"})
    assert "role other" in r.errors()[0]["msg"]


def test_wrong_service_account_in_jwt_is_auth_denied_with_a_hint(bw, harness):
    env = bw.base_env(BAOWRAP_JWT_FILE=harness["TOKEN_K8S_INTRUDER"])
    r = assert_fails_closed(bw, ["--secret", "DB=secret/app/db#password"], {"DB": "auth_denied"}, env=env)
    msg = r.errors()[0]["msg"]
    assert "service account name not authorized" in msg
    assert "(hint: check that role app binds this ServiceAccount" in msg


def test_kv_v2_and_v1_values_arrive_byte_exact(bw, expected):
    keys = ["secret/app/types#num", "secret/app/types#float", "secret/app/types#bool", "secret/app/types#null",
            "secret/app/types#obj", "secret/app/types#arr", "secret/app/big#value", "secret/app/multiline#value",
            "secret/app/db#username", "kv1/app/api#token"]
    args = []
    for i, ref in enumerate(keys):
        args += ["--secret", f"V{i}={ref}"]
    r, child = bw.child_env(args)
    assert r.returncode == 0, r
    for i, ref in enumerate(keys):
        assert child[f"V{i}".encode()] == expected[ref].encode(), ref
    assert len(child[b"V6"]) == 65536


def test_pinned_versions(bw, expected):
    r, child = bw.child_env(["--secret", "V1=secret/app/versioned#value#1", "--secret", "V2=secret/app/versioned#value#2",
                             "--secret", "LATEST=secret/app/versioned#value",
                             "--secret", "OLD=secret/app/deleted#value#1",
                             "--secret", "API=secret/data/app/db#password#1"])
    assert r.returncode == 0, r
    assert (child[b"V1"], child[b"V2"], child[b"LATEST"]) == (b"v1", b"v2", b"v3")
    assert child[b"OLD"] == expected["secret/app/deleted#value#1"].encode()
    assert child[b"API"] == expected["secret/app/db#password"].encode()


def test_deleted_and_destroyed_versions_are_version_deleted(bw):
    r = assert_fails_closed(bw, ["--secret", "DEL=secret/app/deleted#value#2", "--secret", "GONE=secret/app/destroyed#value",
                                 "--secret", "OK=secret/app/db#username"],
                            {"DEL": "version_deleted", "GONE": "version_deleted"})
    msgs = {e["var"]: e["msg"] for e in r.errors()}
    assert "is deleted" in msgs["DEL"] and "is destroyed" in msgs["GONE"]


def test_missing_key_and_missing_path_are_not_found(bw):
    assert_fails_closed(bw, ["--secret", "KEY=secret/app/db#no-such-key", "--secret", "PATH_=secret/app/no-such-path#x",
                             "--secret", "V1=kv1/app/no-such-path#x", "--secret", "OK=secret/app/db#username"],
                        {"KEY": "not_found", "PATH_": "not_found", "V1": "not_found"})


def test_version_pinned_on_kv_v1_is_a_config_error(bw):
    assert_fails_closed(bw, ["--secret", "API=kv1/app/api#token#2"], {"API": "config"})


def test_policy_denial_is_permission_denied_with_a_hint(bw):
    r = assert_fails_closed(bw, ["--secret", "X=secret/forbidden/x#value", "--secret", "OK=secret/app/db#username"],
                            {"X": "permission_denied"})
    msg = r.errors()[0]["msg"]
    assert "HTTP 403: permission denied" in msg and "policies must grant read" in msg
    assert "secret/forbidden" not in r.stderr.decode(), "raw paths only with --log-paths"


def test_namespace(bw, harness, expected):
    ns = harness["BAO_TEST_NAMESPACE"]
    r, child = bw.child_env(["--namespace", ns, "--secret", "DB=secret/app/db#password"])
    assert r.returncode == 0, r
    assert child[b"DB"] == expected[f"{ns}:secret/app/db#password"].encode()
    assert child[b"DB"] != expected["secret/app/db#password"].encode()
    # The namespace also comes from BAO_NAMESPACE, as the bao CLI reads it.
    r, child = bw.child_env(["--secret", "DB=secret/app/db#password"], env=bw.base_env(BAO_NAMESPACE=ns))
    assert child[b"DB"] == expected[f"{ns}:secret/app/db#password"].encode()


def test_namespace_without_the_role_is_auth_denied(bw, harness):
    assert_fails_closed(bw, ["--namespace", harness["BAO_TEST_NAMESPACE"], "--role", "other",
                             "--secret", "DB=secret/app/db#password"], {"DB": "auth_denied"})


def audit_entries(harness, path):
    entries = []
    for line in Path(harness["AUDIT_LOG"]).read_text().splitlines():
        entry = json.loads(line)
        if entry.get("request", {}).get("path") == path:
            entries.append(entry)
    return entries


def accessors(harness):
    status, body = bao_api(harness, "LIST", "auth/token/accessors")
    assert status == 200, body
    return set(body["data"]["keys"])


def test_token_is_revoked_after_the_fetch(bw, harness):
    before_accessors = accessors(harness)
    before_revokes = len(audit_entries(harness, "auth/token/revoke-self"))
    r, started = run_marked(bw, ["--secret", "DB=secret/app/db#password"])
    assert r.returncode == 0 and started, r
    revokes = audit_entries(harness, "auth/token/revoke-self")[before_revokes:]
    assert [e["type"] for e in revokes] == ["request", "response"]
    assert "error" not in revokes[-1]
    # The login minted exactly one token; none outlives the start.
    assert accessors(harness) == before_accessors


def test_on_missing_skip_leaves_the_variable_unset_with_a_warning(bw, expected):
    env = bw.base_env(GONE="bao:secret/app/no-such-path#x", ALSO_GONE="vault:secret/app/db#no-such-key",
                      KEPT="bao:secret/app/db#username")
    r, child = bw.child_env(["--on-missing", "skip", "--secret", "FLAG_GONE=secret/app/deleted#value#2"], env=env)
    assert r.returncode == 0, r
    assert b"GONE" not in child and b"ALSO_GONE" not in child and b"FLAG_GONE" not in child
    assert child[b"KEPT"] == b"appuser"
    warned = sorted(l["var"] for l in r.logs if l.get("event") == "secret_skipped" and l["level"] == "warn")
    assert warned == ["ALSO_GONE", "FLAG_GONE", "GONE"]


def test_on_missing_skip_still_fails_on_denial(bw):
    assert_fails_closed(bw, ["--on-missing", "skip", "--secret", "X=secret/forbidden/x#value"], {"X": "permission_denied"})


@pytest.fixture
def odd_secret(harness):
    """A secret whose keys need sanitising, created for the test only."""
    data = {"db-host": "h1", "api.key": "k-2", "lower": "l3", "MiXed_9": "m4", "ünï": "u5", "n": 7}
    status, body = bao_api(harness, "POST", "secret/data/app/odd", {"data": data})
    assert status == 200, body
    yield data
    bao_api(harness, "DELETE", "secret/metadata/app/odd")


def test_from_path_with_prefix_and_key_sanitising(bw, odd_secret, expected):
    r, child = bw.child_env(["--from-path", "ODD_=secret/app/odd", "--from-path", "=kv1/app/api"])
    assert r.returncode == 0, r
    assert {k: v for k, v in child.items() if k.startswith(b"ODD_")} == {
        b"ODD_DB_HOST": b"h1", b"ODD_API_KEY": b"k-2", b"ODD_LOWER": b"l3", b"ODD_MIXED_9": b"m4",
        "ODD__N_".encode(): b"u5", b"ODD_N": b"7"}
    assert child[b"TOKEN"] == expected["kv1/app/api#token"].encode()


def test_from_path_explicit_secret_wins(bw, odd_secret):
    r, child = bw.child_env(["--from-path", "ODD_=secret/app/odd", "--secret", "ODD_LOWER=secret/app/db#username"])
    assert r.returncode == 0, r
    assert child[b"ODD_LOWER"] == b"appuser"


@pytest.fixture
def clashing_secret(harness):
    status, body = bao_api(harness, "POST", "secret/data/app/clash", {"data": {"a-b": "1", "a.b": "2", "9lives": "3"}})
    assert status == 200, body
    yield
    bao_api(harness, "DELETE", "secret/metadata/app/clash")


def test_from_path_keys_that_collide_or_make_no_name_fail_closed(bw, clashing_secret):
    r = assert_fails_closed(bw, ["--from-path", "=secret/app/clash"], {"A_B": "config", "9LIVES": "config"})
    msgs = " ".join(e["msg"] for e in r.errors())
    assert 'keys "a-b" and "a.b"' in msgs and "does not make a valid variable name" in msgs


def check_table(r):
    lines = r.stdout.decode().splitlines()
    assert lines[0].split() == ["NAME", "SOURCE", "VERSION", "ROUTE", "STATUS"], r
    return {cells[0]: cells for cells in (l.split() for l in lines[1:])}


def test_check_all_resolved_exits_0(bw):
    r = bw.run(["check", "--log-paths", "--secret", "DB=secret/app/db#password", "--secret", "V=secret/app/versioned#value#2",
                "--secret", "API=kv1/app/api#token", "--from-path", "T_=secret/app/types"])
    assert r.returncode == 0, r
    rows = check_table(r)
    assert rows["DB"] == ["DB", "secret/app/db#password", "1", "direct", "ok"]
    assert rows["V"] == ["V", "secret/app/versioned#value#2", "2", "direct", "ok"]
    assert rows["API"] == ["API", "kv1/app/api#token", "-", "direct", "ok"]
    assert rows["T_NUM"][1:] == ["secret/app/types#*", "1", "direct", "ok"]


def test_check_with_a_failing_secret_exits_1(bw):
    r = bw.run(["check", "--secret", "DB=secret/app/db#password", "--secret", "NOPE=secret/app/nope#x",
                "--secret", "X=secret/forbidden/x#value"])
    assert r.returncode == 1, r
    rows = check_table(r)
    assert rows["DB"][-1] == "ok" and rows["NOPE"][-1] == "not_found" and rows["X"][-1] == "permission_denied"
    assert rows["NOPE"][1].startswith("sha256:"), "paths hashed by default"
    assert sorted(r.error_classes()) == ["not_found", "permission_denied"]


def test_check_that_cannot_log_in_exits_125(bw):
    r = bw.run(["check", "--role", "other", "--secret", "DB=secret/app/db#password"])
    assert r.returncode == 125, r
    assert check_table(r)["DB"][-1] == "auth_denied"
    r = bw.run(["check", "--timeout", "forever", "--secret", "DB=secret/app/db#password"])
    assert r.returncode == 125 and r.error_classes() == ["config"], r


def test_keep_alive_connections_are_reused_across_the_start(bw, harness):
    # HTTP/1.1 keep-alive: the login's connection carries a later request,
    # the lookup and ten reads in flight together open at most 11, and the
    # revocation goes over one already open (client ports in the audit log).
    audit = Path(harness["AUDIT_LOG"])
    before = len(audit.read_text().splitlines())
    r, started = run_marked(bw, [a for i in range(10) for a in ("--secret", f"S{i}=secret/many/p{i:03d}#value")])
    assert r.returncode == 0 and started, r
    requests = [json.loads(l)["request"] for l in audit.read_text().splitlines()[before:]]
    paths = [q["path"] for q in requests]
    assert paths[0] == "auth/kubernetes/login" and paths[-1] == "auth/token/revoke-self" and len(set(paths)) == 13, paths
    ports = [q["remote_port"] for q in requests]
    assert ports[0] in ports[1:] and ports[-1] in ports[:-1], ports
    assert len(set(ports)) <= 11, ports
