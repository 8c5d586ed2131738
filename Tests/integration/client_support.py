"""Helpers shared by the test_client*.py files: running baowrap in front of
a child that would leave a mark, and checking the fail-closed contract."""
import os
import socket


def run_marked(bw, args, env=None, **kw):
    """Runs `baowrap ARGS -- sh -c 'touch MARK'`; returns (result, started)."""
    mark = bw.tmp / f"child-started-{os.urandom(4).hex()}"
    r = bw.run([*args, "--", "sh", "-c", f'touch "{mark}"'], env=env, **kw)
    return r, mark.exists()


def assert_fails_closed(bw, args, expected, env=None, **kw):
    """The run must exit 125 without starting the child, with exactly one
    error line per failing variable naming the variable and its class.
    `expected` maps variable name to error class. Returns the Result."""
    r, started = run_marked(bw, args, env=env, **kw)
    assert r.returncode == 125, r
    assert not started, "the child was started despite a failing secret"
    errors = r.errors()
    got = sorted((e.get("var"), e.get("class")) for e in errors)
    assert got == sorted(expected.items()), r
    for e in errors:
        assert e["msg"].startswith(e["var"] + ": "), e
    return r


def free_port() -> int:
    """A loopback port nothing listens on (bound, then closed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def route_lines(r):
    return [line for line in r.logs if line.get("event") == "route"]
