"""The main job end to end: Kubernetes auth over TLS, KV v2 and v1, the
child sees exact bytes, the wrapper's own output never holds a value."""


def test_run_injects_secrets_byte_exact(bw, expected):
    r, child = bw.child_env(["--secret", "DB_PASSWORD=secret/app/db#password",
                             "--secret", "API_TOKEN=kv1/app/api#token"])
    assert r.returncode == 0, r
    assert child[b"DB_PASSWORD"] == expected["secret/app/db#password"].encode()
    assert child[b"API_TOKEN"] == expected["kv1/app/api#token"].encode()
    assert not any(k.startswith(b"BAOWRAP_") for k in child)


def test_check_prints_table_without_values(bw):
    r = bw.run(["check", "--secret", "DB_PASSWORD=secret/app/db#password"])
    assert r.returncode == 0, r
    lines = r.stdout.decode().splitlines()
    assert lines[0].split() == ["NAME", "SOURCE", "VERSION", "ROUTE", "STATUS"]
    assert lines[1].split()[0] == "DB_PASSWORD" and lines[1].split()[-1] == "ok"
    assert "secret/app/db" not in r.stdout.decode()  # hashed by default
