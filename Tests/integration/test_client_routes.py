"""Connectivity: the nginx broker under its path prefix (TLS and mTLS),
--connect auto's fallback rule, mTLS listeners, and server-name checks."""
import socket

import pytest

from client_support import assert_fails_closed, free_port, route_lines

SECRETS = ["--secret", "DB=secret/app/db#password", "--secret", "API=kv1/app/api#token"]


def access_log_lines(harness):
    with open(harness["NGINX_ACCESS_LOG"]) as f:
        return f.read().splitlines()


def test_broker_path_prefix_over_tls(bw, harness, expected):
    before = len(access_log_lines(harness))
    r, child = bw.child_env(["--broker", harness["BROKER_ADDR"], "--connect", "broker",
                             "--broker-ca-cert", harness["CA_CERT"], *SECRETS])
    assert r.returncode == 0, r
    assert child[b"DB"] == expected["secret/app/db#password"].encode()
    assert child[b"API"] == expected["kv1/app/api#token"].encode()
    assert [l["route"] for l in route_lines(r)] == ["broker"]
    served = access_log_lines(harness)[before:]
    assert any("POST /openbao/v1/auth/kubernetes/login" in l for l in served)
    assert any("GET /openbao/v1/secret/data/app/db" in l for l in served)


def test_broker_with_its_own_ca(bw, harness):
    # The broker's CA is the one checked: the direct CA does not vouch for it.
    env = bw.base_env(BAOWRAP_CACERT=harness["OTHER_CA_CERT"])
    r, child = bw.child_env(["--broker", harness["BROKER_ADDR"], "--connect", "broker",
                             "--broker-ca-cert", harness["CA_CERT"], *SECRETS], env=env)
    assert r.returncode == 0, r
    assert_fails_closed(bw, ["--broker", harness["BROKER_ADDR"], "--connect", "broker",
                             "--broker-ca-cert", harness["OTHER_CA_CERT"], *SECRETS], {"DB": "tls", "API": "tls"})


def test_broker_mtls_with_a_client_certificate(bw, harness, expected):
    r, child = bw.child_env(["--broker", harness["BROKER_MTLS_ADDR"], "--connect", "broker",
                             "--client-cert", harness["CLIENT_CERT"], "--client-key", harness["CLIENT_KEY"], *SECRETS])
    assert r.returncode == 0, r
    assert child[b"DB"] == expected["secret/app/db#password"].encode()


def test_broker_mtls_without_a_client_certificate_is_tls(bw, harness):
    r = assert_fails_closed(bw, ["--broker", harness["BROKER_MTLS_ADDR"], "--connect", "broker", *SECRETS],
                            {"DB": "tls", "API": "tls"})
    assert "No required SSL certificate was sent" in r.errors()[0]["msg"]
    assert "--client-cert" in r.errors()[0]["msg"]


def test_direct_mtls_listener(bw, harness, expected):
    env = bw.base_env(BAOWRAP_ADDR=harness["BAO_MTLS_ADDR"])
    assert_fails_closed(bw, SECRETS, {"DB": "tls", "API": "tls"}, env=env)
    r, child = bw.child_env(["--client-cert", harness["CLIENT_CERT"], "--client-key", harness["CLIENT_KEY"], *SECRETS],
                            env=env)
    assert r.returncode == 0, r
    assert child[b"API"] == expected["kv1/app/api#token"].encode()


def test_broker_down_auto_falls_back_to_direct(bw, expected):
    dead = f"https://127.0.0.1:{free_port()}/openbao"
    r, child = bw.child_env(["--broker", dead, *SECRETS])
    assert r.returncode == 0, r
    assert child[b"DB"] == expected["secret/app/db#password"].encode()
    routes = route_lines(r)
    assert len(routes) == 1 and routes[0]["level"] == "info" and routes[0]["route"] == "direct", r
    assert [l["event"] for l in r.logs if l["level"] == "warn"] == ["broker_unreachable"]


def test_broker_down_in_broker_mode_does_not_fall_back(bw):
    dead = f"https://127.0.0.1:{free_port()}/openbao"
    assert_fails_closed(bw, ["--broker", dead, "--connect", "broker", "--timeout", "2s", *SECRETS],
                        {"DB": "connect", "API": "connect"})


def test_broker_answering_502_html_is_an_error_without_fallback(bw, harness, fault):
    # The direct address is the fault proxy, so any fallback would show up there.
    env = bw.base_env(BAOWRAP_ADDR=harness["FAULT_ADDR"])
    r = assert_fails_closed(bw, ["--broker", harness["BROKER_BROKEN_ADDR"], "--timeout", "2s", *SECRETS],
                            {"DB": "connect", "API": "connect"}, env=env)
    assert "HTTP 502 with non-JSON body" in r.errors()[0]["msg"]
    assert fault.requests() == []


def test_wrong_server_name_is_tls(bw):
    r = assert_fails_closed(bw, ["--tls-server-name", "wrong.test", *SECRETS], {"DB": "tls", "API": "tls"})
    assert "wrong.test" in r.errors()[0]["msg"]


def test_right_server_name_not_in_dns_works(bw, harness, expected):
    name = harness["BAO_TLS_SERVER_NAME"]
    with pytest.raises(OSError):
        socket.getaddrinfo(name, 443)  # curl must connect to the URL's address, not resolve this
    r, child = bw.child_env(["--tls-server-name", name, *SECRETS])
    assert r.returncode == 0, r
    assert child[b"DB"] == expected["secret/app/db#password"].encode()


def test_auto_prefers_a_reachable_broker(bw, harness, fault):
    env = bw.base_env(BAOWRAP_ADDR=harness["FAULT_ADDR"], BAOWRAP_BROKER_ADDR=harness["BROKER_ADDR"])
    r, child = bw.child_env(SECRETS, env=env)
    assert r.returncode == 0, r
    assert [l["route"] for l in route_lines(r)] == ["broker"]
    assert fault.requests() == []
