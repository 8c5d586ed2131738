"""`make bench`'s machinery, run once on tiny cases against the test harness:
every contender (baowrap, OpenBao Agent, the bao CLI script, the physical-
limit client, tini) must deliver every secret with the right value, and the
report and chart must be written. No figure is asserted: timing is for
`make bench` on a quiet machine."""
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_bench_smoke_run_writes_a_report(bw, harness, tmp_path):
    tools = tmp_path / "tools"
    tools.mkdir()
    subprocess.run([REPO / "bench" / "build-tools.sh", tools], check=True, capture_output=True)
    doc = tmp_path / "benchmarks.md"
    doc.write_text((REPO / "docs" / "benchmarks.md").read_text())
    chart = tmp_path / "benchmarks.svg"
    env_file = tmp_path / "harness.env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in harness.items()))
    r = subprocess.run([sys.executable, REPO / "bench" / "run.py", "--smoke", "--env", env_file, "--baowrap", bw.binary,
                        "--tools", tools, "--doc", doc, "--chart", chart],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    results = doc.read_text().split("<!-- bench:results:begin -->")[1]
    for row in ("| 1 |", "| 3 on 2 paths |", "| `baowrap --` |", "| `tini -s --` |"):
        assert row in results, row
    assert "Agent" in results and "bao CLI script" in results
    assert chart.read_text().lstrip().startswith("<?xml") and "<svg" in chart.read_text()
