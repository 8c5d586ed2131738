"""Many wrapped workloads started at once through the HA lane, with a fault
injected part-way, and what became of each: it started with exactly the
seeded values, or it was not started and the wrapper exited 125 naming an
error class. test_ha_load.py asserts on it; run on its own it prints the
figures for longer runs:

    python Tests/ha/load.py --env .deps/ha/env --balancer nginx --fault kill --workloads 1000

Start latency is the time from launching the wrapper to the workload
writing its environment (the file's mtime), so the token revocation after
the spawn does not count."""
import argparse
import datetime
import json
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE))
from conftest import SECRET_ARGS, SECRETS, integration  # noqa: E402  (the tests' workload and log reader)

# The error classes a fault in the cluster may legitimately end in.
FAULT_CLASSES = {"connect", "timeout", "sealed"}


@dataclass
class Start:
    returncode: int
    started: bool
    # The workload's environment, when it started.
    env: dict
    # Launch to workload start (seconds), when it started.
    latency: float | None
    error_classes: list
    # What each attempt the wrapper tried again got: an HTTP status, with
    # OpenBao's error for a 500, or the class of a transport failure.
    retries: list
    # Wall-clock times (s) of the retry lines, to bound the failure window.
    retry_times: list
    output: bytes = field(repr=False, default=b"")


def answer(line) -> str:
    if "status" not in line:
        return line.get("class", "?")
    m = re.search(r"HTTP 500: (.*?); trying again", line["msg"])
    return f"500 {m.group(1)}" if m else str(line["status"])


def timestamp(line) -> float:
    return datetime.datetime.strptime(line["ts"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()


def start_one(binary, env, args, outdir: Path, i: int) -> Start:
    out = outdir / f"workload-{i}.env"
    launched = time.time_ns()
    proc = subprocess.run([str(binary), *args, "--", "sh", "-c", 'env -0 > "$0"', str(out)],
                          env=env, capture_output=True, timeout=180)
    started = out.exists()
    child = {}
    latency = None
    if started:
        latency = (out.stat().st_mtime_ns - launched) / 1e9
        for entry in out.read_bytes().split(b"\0"):
            if b"=" in entry:
                k, v = entry.split(b"=", 1)
                child[k.decode()] = v.decode(errors="surrogateescape")
        out.unlink()
    logs = integration.Result(proc).logs
    retry_lines = [l for l in logs if l.get("event") == "retry"]
    return Start(
        returncode=proc.returncode, started=started, env=child, latency=latency,
        error_classes=[l.get("class") for l in logs if l.get("level") == "error"],
        retries=[answer(l) for l in retry_lines],
        retry_times=[timestamp(l) for l in retry_lines],
        output=proc.stdout + proc.stderr)


@dataclass
class Wave:
    starts: list
    # Wall-clock time the fault was injected, if one was.
    fault_at: float | None
    wall: float


def run_wave(binary, env, args, workloads, concurrency, fault=None, fault_after=0) -> Wave:
    """Starts `workloads` wrappers, `concurrency` at a time, workload i with
    the arguments `args(i)`; once `fault_after` of them have been launched,
    calls `fault()` once while the rest run."""
    outdir = Path(tempfile.mkdtemp(prefix="ha-load-"))
    launched = 0
    lock = threading.Lock()
    fault_at = None
    ready = threading.Event()

    def one(i):
        nonlocal launched
        with lock:
            launched += 1
            if launched >= fault_after:
                ready.set()
        return start_one(binary, env, args(i), outdir, i)

    def inject():
        nonlocal fault_at
        ready.wait()
        fault_at = time.time()
        fault()

    t0 = time.monotonic()
    injector = threading.Thread(target=inject) if fault else None
    if injector:
        injector.start()
    with ThreadPoolExecutor(concurrency) as pool:
        starts = list(pool.map(one, range(workloads)))
    if injector:
        ready.set()
        injector.join()
    outdir.rmdir()
    return Wave(starts=starts, fault_at=fault_at, wall=time.monotonic() - t0)


def wrongly_started(wave: Wave, expected: dict) -> list:
    """Workloads that started without exactly the expected variables
    (`expected` maps variable name to value)."""
    return [s for s in wave.starts if s.started and any(s.env.get(k) != v for k, v in expected.items())]


def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def summary(wave: Wave, expected: dict) -> dict:
    lat = [s.latency for s in wave.starts if s.latency is not None]
    retried = [r for s in wave.starts for r in s.retries]
    kinds = {}
    for what in retried:
        kinds[what] = kinds.get(what, 0) + 1
    failed = [s for s in wave.starts if not s.started]
    classes = {}
    for s in failed:
        for c in set(s.error_classes):
            classes[c] = classes.get(c, 0) + 1
    times = [t for s in wave.starts for t in s.retry_times]
    return {
        "workloads": len(wave.starts),
        "started": len(wave.starts) - len(failed),
        "not_started": len(failed),
        "not_started_classes": classes,
        "started_wrongly": len(wrongly_started(wave, expected)),
        "workloads_that_retried": sum(1 for s in wave.starts if s.retries),
        "retries": len(retried),
        "retried_answers": kinds,
        # From the fault to the last failed attempt any wrapper saw.
        "failure_window_s": round(max(times) - wave.fault_at, 2) if times and wave.fault_at else 0.0,
        "latency_ms": {
            "p50": round(statistics.median(lat) * 1000, 1) if lat else None,
            "p95": round(percentile(lat, 95) * 1000, 1) if lat else None,
            "max": round(max(lat) * 1000, 1) if lat else None,
        },
        "wall_s": round(wave.wall, 2),
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--env", required=True, help="the lane's env file")
    p.add_argument("--binary", default=str(REPO / "dist" / "baowrap"))
    p.add_argument("--balancer", choices=["nginx", "haproxy"], default="nginx")
    p.add_argument("--fault", choices=["none", "kill", "seal"], default="none")
    p.add_argument("--workloads", type=int, default=200)
    p.add_argument("--concurrency", type=int, default=20)
    a = p.parse_args(argv)
    lane = dict(line.split("=", 1) for line in Path(a.env).read_text().splitlines() if "=" in line)
    values = json.loads(Path(lane["EXPECTED_JSON"]).read_text())
    expected = {name: values[ref] for name, ref in SECRETS.items()}
    node = [lane["HA_NODE_SCRIPT"], lane["HA_STATE_DIR"]]
    active = int(subprocess.run([*node, "active"], check=True, capture_output=True, text=True).stdout)
    victim = active if a.fault == "kill" else active % 3 + 1
    faults = {"kill": lambda: subprocess.run([*node, "kill", str(victim)], check=True),
              "seal": lambda: subprocess.run([*node, "seal", str(victim)], check=True)}
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "BAOWRAP_ADDR": lane[f"HA_{a.balancer.upper()}_ADDR"],
           "BAOWRAP_CACERT": lane["CA_CERT"], "BAOWRAP_AUTH_METHOD": "jwt", "BAOWRAP_AUTH_PATH": lane["JWT_AUTH_PATH"],
           "BAOWRAP_ROLE": lane["JWT_ROLE"], "BAOWRAP_JWT_FILE": lane["TOKEN_JWT_VALID"],
           "BAOWRAP_TIMEOUT": "30s", "BAOWRAP_LOG_LEVEL": "debug"}
    try:
        wave = run_wave(a.binary, env, lambda i: SECRET_ARGS, a.workloads, a.concurrency, fault=faults.get(a.fault),
                        fault_after=a.workloads // 4)
    finally:
        if a.fault == "seal":
            subprocess.run([*node, "kill", str(victim)], check=True)
        if a.fault != "none":
            subprocess.run([*node, "start", str(victim)], check=True)
            subprocess.run([*node, "settle"], check=True)
    print(json.dumps({"balancer": a.balancer, "fault": a.fault, **summary(wave, expected)}))
    return 0 if summary(wave, expected)["started_wrongly"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
