"""Once the child runs, a stop signal is the child's: one that arrives while
baowrap still revokes its login token is forwarded, not taken for an
interrupted start-up. (Found by the pod e2e test: the kubelet's SIGTERM
right after a container started never reached the app, which then ran until
the grace period's SIGKILL.)"""
import os
import signal
import time
from datetime import datetime

# The child writes READY once it runs, then TERM when SIGTERM reaches it;
# it gives up after a minute, so a failing run leaves nothing behind.
APP = ('trap "echo TERM > $0/term; exit 0" TERM; : > $0/ready; i=0; '
       'while [ $i -lt 60 ]; do sleep 1 & wait $!; i=$((i + 1)); done')


def test_sigterm_during_token_revocation_reaches_the_child(bw, harness, fault, tmp_path):
    # Revocation hangs until its own deadline, so the signal lands inside it.
    fault.mode("blackhole", path="/v1/auth/token/revoke-self")
    env = bw.base_env(BAOWRAP_ADDR=harness["FAULT_ADDR"], BAOWRAP_LOG_LEVEL="debug")
    p = bw.start(["--secret", "X=secret/app/db#password", "--", "sh", "-c", APP, str(tmp_path)], env=env)
    end = time.monotonic() + 30
    while not (tmp_path / "ready").exists():
        assert p.proc.poll() is None and time.monotonic() < end, p.stderr()
        time.sleep(0.02)
    sent = time.time()
    os.kill(p.pid, signal.SIGTERM)
    r = p.finish(timeout=30)
    assert r.returncode == 0, r
    assert (tmp_path / "term").read_text() == "TERM\n"
    (revoke,) = [l for l in r.logs if l.get("event") == "revoke_failed"]
    # The revocation ran to its deadline: the signal neither cut it short
    # nor arrived after it.
    assert revoke["class"] == "timeout", revoke
    assert datetime.fromisoformat(revoke["ts"].replace("Z", "+00:00")).timestamp() > sent, (revoke, sent)
