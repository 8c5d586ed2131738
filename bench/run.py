#!/usr/bin/env python3
"""Time-to-exec benchmark: baowrap against OpenBao Agent exec mode, a bao CLI
entrypoint script and the physical limit, plus the bare supervisor against
tini. Measures against a running harness (Tests/harness), writes the results
into docs/benchmarks.md between its markers and draws the chart with gnuplot.

Time to exec runs from just before posix_spawn of the contender to the
workload's first instruction: the workload (bench/stamp) reads
CLOCK_MONOTONIC first thing and writes it to a file. Every run is checked:
the workload must have received every secret with the right value.

Runs are interleaved: round r measures every contender once for every case
before round r+1 starts, so a load spike hits all contenders alike, and
ratios are taken pair by pair within a round. Standard library only.
"""
import argparse
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BEGIN, END = "<!-- bench:results:begin -->", "<!-- bench:results:end -->"
# OpenBao Agent's exec server waits this long after the last template render
# before it starts the child (a fixed debounce timer in
# command/agent/exec/exec.go; no setting changes it).
AGENT_FIXED_WAIT_MS = 2000
WIDTH = 16  # reads in flight: baowrap's concurrency and the limit's


@dataclass(frozen=True)
class Case:
    secrets: int
    paths: int

    @property
    def label(self):
        return f"{self.secrets}" if self.secrets == self.paths else f"{self.secrets} on {self.paths} paths"

    @property
    def key(self):
        return f"{self.secrets}/{self.paths}"


CASES = [Case(1, 1), Case(10, 10), Case(100, 100), Case(100, 10)]
# Small, but with a path shared by several variables (the Agent's template
# comment) and more secrets than paths.
SMOKE_CASES = [Case(1, 1), Case(3, 2)]


@dataclass
class Sample:
    ms: float
    maxrss_kb: int = 0
    parent: dict = field(default_factory=dict)  # the supervising parent's memory, KiB


class BenchError(Exception):
    pass


def fnv1a(data: bytes) -> int:
    h = 1469598103934665603
    for b in data:
        h = ((h ^ b) * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    return h


def p90(values):
    """Nearest rank: the 9th of 10 values."""
    s = sorted(values)
    return s[max(0, math.ceil(0.9 * len(s)) - 1)]


def rule(head):
    """The markdown rule under a table head: first column left, the rest right."""
    return "|" + "|".join(["---"] + ["---:"] * (head.count("|") - 2)) + "|"


def loadavg():
    return float(Path("/proc/loadavg").read_text().split()[0])


class Runner:
    """Starts one contender through bench/launch and reads the workload's stamp."""

    def __init__(self, tools: Path, work: Path):
        self.launch = str(tools / "launch")
        self.stamp_bin = str(tools / "stamp")
        self.stamp_file = work / "stamp.out"

    def workload(self, hold_ms=None):
        return [self.stamp_bin, str(self.stamp_file)] + ([str(hold_ms)] if hold_ms else [])

    def launch_one(self, argv, env):
        """(start_ns, end_ns, maxrss_kib) of one run that must exit 0."""
        r = subprocess.run([self.launch, *argv], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        fields = r.stdout.split()
        if r.returncode != 0 or len(fields) != 4:
            raise BenchError(f"launch {argv[0]} failed: {r.stderr.strip()}")
        start, end, code, maxrss = map(int, fields)
        if code != 0:
            raise BenchError(f"{argv[0]} exited with {code}: {r.stderr.strip()[-2000:]}")
        return start, end, maxrss

    def run(self, argv, env, expect_count, expect_sum):
        self.stamp_file.unlink(missing_ok=True)
        start, _, maxrss = self.launch_one(argv, env)
        if not self.stamp_file.exists():
            raise BenchError(f"{argv[0]} never started the workload")
        fields = self.stamp_file.read_text().split()
        ts, count, checksum = int(fields[0]), int(fields[1]), int(fields[2], 16)
        if count != expect_count or checksum != expect_sum:
            raise BenchError(f"{argv[0]}: the workload got {count} secrets (checksum {checksum:x}), "
                             f"expected {expect_count} ({expect_sum:x})")
        parent = dict(zip(("rss", "hwm", "anon", "file"), map(int, fields[3:7])))
        return Sample((ts - start) / 1e6, maxrss, parent)

    def run_to_exit(self, argv, env):
        start, end, maxrss = self.launch_one(argv, env)
        return Sample((end - start) / 1e6, maxrss)


class Bench:
    def __init__(self, args):
        self.args = args
        self.h = dict(l.split("=", 1) for l in Path(args.env).read_text().splitlines() if "=" in l)
        self.expected = json.loads(Path(self.h["EXPECTED_JSON"]).read_text())
        self.tools = Path(args.tools).resolve()
        self.work = Path(tempfile.mkdtemp(prefix="baowrap-bench-"))
        self.runner = Runner(self.tools, self.work)
        self.baowrap = str(Path(args.baowrap).resolve())
        self.bao = self.h["BAO_BIN"]
        self.tini = shutil.which("tini") or "/usr/bin/tini"
        self.addr = self.h["BAO_TLS_ADDR"]  # https://127.0.0.1:PORT; the certificate has that IP SAN
        self.cases = SMOKE_CASES if args.smoke else CASES
        self.loads = []
        self.limit = None

    # --- what every contender is asked for -----------------------------------

    def refs(self, case, api_form=False):
        """(variable, reference) for N secrets on P paths of secret/many/."""
        mid = "data/" if api_form else ""
        return [(f"BENCH_S_{i:03d}", f"secret/{mid}many/p{i % case.paths:03d}#value") for i in range(case.secrets)]

    def checksum(self, case):
        total = 0
        for _, ref in self.refs(case):
            total += fnv1a(self.expected[ref].encode())
        return total & 0xFFFFFFFFFFFFFFFF

    def base_env(self):
        return {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(self.work)}

    # --- contenders -----------------------------------------------------------

    def baowrap_env(self, case, api_form=False):
        env = self.base_env()
        env.update(BAOWRAP_ADDR=self.addr, BAOWRAP_CACERT=self.h["CA_CERT"], BAOWRAP_ROLE=self.h["K8S_ROLE"],
                   BAOWRAP_JWT_FILE=self.h["TOKEN_K8S_VALID"], BAOWRAP_LOG_LEVEL="warn",
                   BAOWRAP_SECRETS="\n".join(f"{n}={r}" for n, r in self.refs(case, api_form)))
        return env

    def run_baowrap(self, case, api_form=False, hold_ms=None):
        return self.runner.run([self.baowrap, "--", *self.runner.workload(hold_ms)], self.baowrap_env(case, api_form),
                               case.secrets, self.checksum(case))

    def agent_config(self, case, hold_ms=None):
        """OpenBao Agent in exec mode, tuned for start-up: one env_template per
        secret, no re-render during the run, exit on the first failure. The
        template comment naming the variable keeps templates that read the
        same secret distinct: the Agent renders identical templates once and
        sets only one of their variables."""
        templates = "".join(f'''
env_template "{name}" {{
  contents             = "{{{{/* {name} */}}}}{{{{ with secret \\"{ref.split('#')[0]}\\" }}}}{{{{ .Data.data.value }}}}{{{{ end }}}}"
  error_on_missing_key = true
}}
''' for name, ref in self.refs(case, api_form=True))
        command = ", ".join(json.dumps(a) for a in self.runner.workload(hold_ms))
        return f'''vault {{
  address = "{self.addr}"
  ca_cert = "{self.h["CA_CERT"]}"
}}
auto_auth {{
  method "kubernetes" {{
    mount_path = "auth/{self.h["K8S_AUTH_PATH"]}"
    config = {{
      role       = "{self.h["K8S_ROLE"]}"
      token_path = "{self.h["TOKEN_K8S_VALID"]}"
    }}
  }}
}}
template_config {{
  exit_on_retry_failure         = true
  static_secret_render_interval = "1h"
}}
exec {{
  command                   = [{command}]
  restart_on_secret_changes = "never"
}}
{templates}'''

    def run_agent(self, case, hold_ms=None):
        conf = self.work / f"agent-{case.secrets}-{case.paths}{'-hold' if hold_ms else ''}.hcl"
        if not conf.exists():
            conf.write_text(self.agent_config(case, hold_ms))
        return self.runner.run([self.bao, "agent", "-log-level=error", f"-config={conf}"], self.base_env(),
                               case.secrets, self.checksum(case))

    def run_cli(self, case):
        env = self.base_env()
        env.update(BAO_ADDR=self.addr, BAO_CACERT=self.h["CA_CERT"])
        argv = ["/bin/sh", str(REPO / "bench" / "cli.sh"), self.bao, self.h["TOKEN_K8S_VALID"], self.h["K8S_ROLE"],
                *(f"{n}={r}" for n, r in self.refs(case)), "--", *self.runner.workload()]
        return self.runner.run(argv, env, case.secrets, self.checksum(case))

    def run_spawn(self):
        return self.runner.run(self.runner.workload(), self.base_env(), 0, 0)

    def start_limit(self):
        argv = [str(self.tools / "limit"), self.addr, self.h["CA_CERT"], self.h["TOKEN_K8S_VALID"], self.h["K8S_ROLE"]]
        self.limit = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)

    def run_limit(self, mode, case):
        self.limit.stdin.write(f"{mode} {case.secrets} {case.paths}\n")
        self.limit.stdin.flush()
        answer = self.limit.stdout.readline().split()
        if not answer or answer[0] != "ok":
            raise BenchError(f"limit client: {' '.join(answer) or 'no answer'}")
        return Sample((int(answer[1]) + int(answer[2])) / 1e6)

    def run_supervisor(self, which, workload):
        argv = {"baowrap": [self.baowrap, "--"], "tini": [self.tini, "-s", "--"], "none": []}[which]
        if workload == "true":
            return self.runner.run_to_exit(argv + ["/bin/true"], self.base_env())
        return self.runner.run(argv + self.runner.workload(300 if workload == "hold" else None), self.base_env(), 0, 0)

    # --- the measurement --------------------------------------------------------

    def wait_for_quiet(self):
        limit, waited = self.args.wait_load, 0
        if limit is None:
            return 0
        while loadavg() >= limit and waited < self.args.wait_max:
            time.sleep(10)
            waited += 10
        return waited

    def measure(self):
        runs = 1 if self.args.smoke else self.args.runs
        series = {}

        def add(name, case_key, sample):
            series.setdefault((name, case_key), []).append(sample)

        self.start_limit()
        # One unrecorded round first: the page cache gets the 180 MB bao
        # binary, and OpenBao its connection to the TokenReview endpoint.
        for case in [] if self.args.smoke else self.cases:
            self.run_limit("h2", case)
            self.run_baowrap(case)
            if not self.args.no_agent:
                self.run_agent(case)
            if not self.args.no_cli:
                self.run_cli(case)
        started = time.monotonic()
        for r in range(runs):
            self.loads.append(loadavg())
            for case in self.cases:
                k = case.key
                add("limit-h1", k, self.run_limit("h1", case))
                add("limit-h2", k, self.run_limit("h2", case))
                add("limit-inline", k, self.run_limit("i2", case))
                add("spawn", k, self.run_spawn())
                add("baowrap", k, self.run_baowrap(case))
                add("baowrap-api", k, self.run_baowrap(case, api_form=True))
                if not self.args.no_agent:
                    add("agent", k, self.run_agent(case))
                if not self.args.no_cli:
                    add("cli", k, self.run_cli(case))
            for _ in range(1 if self.args.smoke else 3):
                for which in ("none", "tini", "baowrap"):
                    add(f"sup-{which}", "stamp", self.run_supervisor(which, "stamp"))
                    add(f"sup-{which}", "true", self.run_supervisor(which, "true"))
            print(f"bench: round {r + 1}/{runs} done after {time.monotonic() - started:.0f}s "
                  f"(load {loadavg():.2f})", file=sys.stderr)
        # Memory while supervising: one held run each, after start-up work is over.
        for case in self.cases:
            add("hold-baowrap", case.key, self.run_baowrap(case, hold_ms=300))
            if not self.args.no_agent:
                add("hold-agent", case.key, self.run_agent(case, hold_ms=300))
        add("hold-baowrap", "none", self.run_supervisor("baowrap", "hold"))
        add("hold-tini", "none", self.run_supervisor("tini", "hold"))
        self.loads.append(loadavg())
        self.limit.stdin.close()
        self.limit.wait()
        return series

    # --- the report ---------------------------------------------------------------

    def machine(self):
        cpu = next((l.split(":", 1)[1].strip() for l in Path("/proc/cpuinfo").read_text().splitlines()
                    if l.startswith("model name")), platform.processor())
        mem = next(int(l.split()[1]) for l in Path("/proc/meminfo").read_text().splitlines() if l.startswith("MemTotal"))
        osname = next((l.split("=", 1)[1].strip('"') for l in Path("/etc/os-release").read_text().splitlines()
                       if l.startswith("PRETTY_NAME=")), "unknown")
        virt = subprocess.run(["systemd-detect-virt"], capture_output=True, text=True).stdout.strip() \
            if shutil.which("systemd-detect-virt") else ""
        if " hypervisor" in Path("/proc/cpuinfo").read_text():
            virt = f"{virt + ', ' if virt and virt != 'none' else ''}virtual machine (cpuinfo: hypervisor)"

        def first_line(argv):
            try:
                return subprocess.run(argv, capture_output=True, text=True).stdout.splitlines()[0]
            except (OSError, IndexError):
                return "unknown"
        return {
            "cpu": f"{os.cpu_count()} × {cpu}", "memory": f"{mem // 1024} MiB", "kernel": platform.release(),
            "os": osname, "virtualization": virt or "none",
            "openbao": first_line([self.bao, "version"]), "tini": first_line([self.tini, "--version"]),
            "baowrap": " / ".join(subprocess.run([self.baowrap, "version"], capture_output=True, text=True)
                                  .stdout.split("\n")[:4]),
        }

    def report(self, series, waited):
        def ms(v):
            return f"{v:,.1f}" if v >= 100 else f"{v:.2f}"

        def times(name, key):
            return [s.ms for s in series[(name, key)]]

        def limit_series(key):
            """The limit's transports, the faster of them, and inline auth,
            each with the same round's spawn of the workload."""
            spawn = times("spawn", key)
            h1, h2, inline = ([a + b for a, b in zip(times(name, key), spawn)]
                              for name in ("limit-h1", "limit-h2", "limit-inline"))
            return h1, h2, [min(a, b) for a, b in zip(h1, h2)], inline

        agent = not self.args.no_agent
        cli = not self.args.no_cli
        runs = len(series[("baowrap", self.cases[0].key)])
        out = []

        def table(head, agent_columns, cli_columns):
            """A table head and its rule, with the Agent's and the CLI's
            columns when they were measured."""
            head += (agent_columns if agent else "") + (cli_columns if cli else "")
            out.extend([head, rule(head)])
        out.append(f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} with `make bench`"
                   f"{' (smoke mode: one run, not a result)' if self.args.smoke else ''}: {runs} interleaved "
                   f"rounds; median and p90 (nearest rank) in milliseconds.\n")
        m = self.machine()
        out.append("| machine | |\n|---|---|")
        for k in ("cpu", "memory", "virtualization", "os", "kernel", "openbao", "tini", "baowrap"):
            out.append(f"| {k} | {m[k]} |")
        out.append(f"| load average (1 min) | {min(self.loads):.2f} to {max(self.loads):.2f} during the run, "
                   f"median {statistics.median(self.loads):.2f}"
                   f"{f'; waited {waited} s for it to drop below {self.args.wait_load}' if waited else ''} |")
        out.append("")

        out.append("### Time to exec\n")
        table("| secrets | baowrap | baowrap, `/data/` refs | physical limit | limit over HTTP/1.1 × 16 | limit over HTTP/2 | inline-auth limit |",
              " Agent exec | Agent less its 2 s wait |", " bao CLI script |")
        chart = []
        for case in self.cases:
            k = case.key
            h1, h2, best, inline = limit_series(k)
            row = [case.label]

            def cell(values):
                return f"{ms(statistics.median(values))} / {ms(p90(values))}"
            bw = times("baowrap", k)
            row += [cell(bw), cell(times("baowrap-api", k)), cell(best), cell(h1), cell(h2), cell(inline)]
            ag = times("agent", k) if agent else []
            cl = times("cli", k) if cli else []
            if agent:
                row += [cell(ag), cell([a - AGENT_FIXED_WAIT_MS for a in ag])]
            if cli:
                row += [cell(cl)]
            out.append("| " + " | ".join(row) + " |")
            chart.append((case, statistics.median(bw), statistics.median(best),
                          statistics.median(ag) if ag else None, statistics.median(cl) if cl else None))
        out.append("")

        out.append("### Against the targets (pair by pair within each round, then the median)\n")
        table("| secrets | baowrap − limit (target ≤ 3 ms) | `/data/` refs − limit |",
              " Agent ÷ baowrap (target ≥ 100×) | (Agent − 2 s) ÷ baowrap |", " CLI ÷ baowrap (target ≥ 20×) |")
        for case in self.cases:
            k = case.key
            _, _, best, _ = limit_series(k)
            bw = times("baowrap", k)
            api = times("baowrap-api", k)
            row = [case.label, f"{statistics.median([a - b for a, b in zip(bw, best)]):+.2f} ms",
                   f"{statistics.median([a - b for a, b in zip(api, best)]):+.2f} ms"]
            if agent:
                ag = times("agent", k)
                row += [f"{statistics.median([a / b for a, b in zip(ag, bw)]):,.0f}×",
                        f"{statistics.median([(a - AGENT_FIXED_WAIT_MS) / b for a, b in zip(ag, bw)]):,.0f}×"]
            if cli:
                cl = times("cli", k)
                row += [f"{statistics.median([a / b for a, b in zip(cl, bw)]):,.0f}×"]
            out.append("| " + " | ".join(row) + " |")
        out.append("")

        out.append("### Supervisor only: no secrets\n")
        out.append("| | time to exec (stamp) | `X -- /bin/true` start to exit | difference to tini (pair by pair) | peak RSS |")
        out.append("|---|---:|---:|---:|---:|")
        tini_stamp = times("sup-tini", "stamp")
        tini_true = times("sup-tini", "true")
        for which, label in (("none", "the workload alone"), ("tini", "`tini -s --`"), ("baowrap", "`baowrap --`")):
            st = times(f"sup-{which}", "stamp")
            tr = times(f"sup-{which}", "true")
            diff = "" if which == "tini" else \
                f"{statistics.median([a - b for a, b in zip(st, tini_stamp)]):+.2f} / {statistics.median([a - b for a, b in zip(tr, tini_true)]):+.2f} ms"
            rss = max(s.maxrss_kb for s in series[(f"sup-{which}", "true")])
            out.append(f"| {label} | {ms(statistics.median(st))} / {ms(p90(st))} | {ms(statistics.median(tr))} / "
                       f"{ms(p90(tr))} | {diff} | {rss / 1024:.1f} MiB |")
        out.append("")

        out.append("### Memory\n")
        out.append("Peak RSS is the largest `ru_maxrss` of the runs (the wrapper, or the largest of the script's "
                   "processes). RSS while supervising is the wrapper's `VmRSS` seen by the workload 300 ms after its "
                   "start, split into anonymous memory and pages of the wrapper's own executable file.\n")
        table("| secrets | baowrap peak | baowrap while supervising (anon + file) |",
              " Agent peak | Agent while supervising |", " CLI script peak |")

        def mib(kib):
            return f"{kib / 1024:.1f} MiB"
        for case in [None] + list(self.cases):
            k = case.key if case else "none"
            hold = series[("hold-baowrap", k)][0].parent
            row = [case.label if case else "none (`baowrap -- true`)",
                   mib(max(s.maxrss_kb for s in series[("sup-baowrap", "true")])) if not case
                   else mib(max(s.maxrss_kb for s in series[("baowrap", k)])),
                   f"{mib(hold['rss'])} ({mib(hold['anon'])} + {mib(hold['file'])})"]
            if agent:
                if case:
                    ah = series[("hold-agent", k)][0].parent
                    row += [mib(max(s.maxrss_kb for s in series[("agent", k)])), mib(ah["rss"])]
                else:
                    row += ["", ""]
            if cli:
                row += [mib(max(s.maxrss_kb for s in series[("cli", k)])) if case else ""]
            out.append("| " + " | ".join(row) + " |")
        tini_hold = series[("hold-tini", "none")][0].parent
        out.append(f"\ntini while supervising: {mib(tini_hold['rss'])} ({mib(tini_hold['anon'])} anon).\n")
        size = Path(self.baowrap).stat().st_size
        out.append(f"baowrap stripped: {size:,} bytes (budget 12,000,000).\n")
        out.append("![time to exec against the number of secrets](benchmarks.svg)\n")
        return "\n".join(out), chart

    def draw(self, chart, path: Path):
        data = self.work / "chart.dat"
        with data.open("w") as f:
            for i, (case, bw, limit, agent, cli) in enumerate(chart):
                f.write(f'{i} "{case.label}" {bw:.3f} {limit:.3f} {agent if agent else "NaN"} '
                        f'{(agent - AGENT_FIXED_WAIT_MS) if agent else "NaN"} {cli if cli else "NaN"}\n')
        terminal = 'pngcairo size 820,480 font "sans,10"' if path.suffix == ".png" \
            else 'svg size 820,480 dynamic font "sans,12" background "white"'
        script = f'''set terminal {terminal}
set output "{path}"
set title "Time from process start to the workload's exec (median, log scale)"
set ylabel "milliseconds"
set xlabel "secrets"
set logscale y
set grid ytics
set key outside right center
set xrange [-0.3:{len(chart) - 0.7}]
set style data linespoints
plot "{data}" using 1:7:xtic(2) title "bao CLI script" lw 2 pt 5, \\
     "" using 1:5 title "OpenBao Agent exec" lw 2 pt 7, \\
     "" using 1:6 title "Agent less its 2 s wait" lw 2 dt 2 pt 6, \\
     "" using 1:3 title "baowrap" lw 3 pt 9, \\
     "" using 1:4 title "physical limit" lw 2 dt 3 pt 2 lc rgb "#555555"
'''
        subprocess.run(["gnuplot"], input=script, text=True, check=True)

    def write(self, body, doc: Path):
        text = doc.read_text() if doc.exists() else f"# Benchmarks\n\n{BEGIN}\n{END}\n"
        if BEGIN not in text or END not in text:
            raise BenchError(f"{doc} has no {BEGIN} ... {END} section")
        head, rest = text.split(BEGIN, 1)
        _, tail = rest.split(END, 1)
        doc.write_text(f"{head}{BEGIN}\n{body}\n{END}{tail}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--env", required=True, help="the harness's env file")
    ap.add_argument("--baowrap", required=True, help="the stripped binary to measure")
    ap.add_argument("--tools", required=True, help="folder with the built stamp and limit")
    ap.add_argument("--doc", required=True, help="markdown file whose results section is rewritten")
    ap.add_argument("--chart", required=True, help="the chart: an .svg or .png file")
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--smoke", action="store_true", help="one round of small cases: checks the bench, measures nothing")
    ap.add_argument("--no-agent", action="store_true")
    ap.add_argument("--no-cli", action="store_true")
    ap.add_argument("--wait-load", type=float, help="first wait until the 1-minute load average is below this")
    ap.add_argument("--wait-max", type=int, default=900, help="seconds to wait for --wait-load at most")
    args = ap.parse_args()
    bench = Bench(args)
    try:
        waited = bench.wait_for_quiet()
        series = bench.measure()
        body, chart = bench.report(series, waited)
        bench.draw(chart, Path(args.chart).resolve())
        bench.write(body, Path(args.doc))
    except BenchError as e:
        print(f"bench: {e}", file=sys.stderr)
        return 1
    finally:
        if bench.limit and bench.limit.poll() is None:
            bench.limit.kill()
        shutil.rmtree(bench.work, ignore_errors=True)
    print(body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
