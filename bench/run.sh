#!/usr/bin/env bash
# make bench: builds the benchmark's two small C tools, starts a fresh harness
# in .deps/harness-bench, runs bench/run.py against dist/baowrap (which the
# Makefile has built) and stops the harness whatever happens.
# Usage: bench/run.sh [run.py options...], e.g. --runs 20 or --wait-load 1.5;
#        bench/run.sh --smoke checks the whole chain in seconds and writes
#        its report to .build-bench/ instead of docs/.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
tools="$root/.build-bench"
mkdir -p "$tools"
"$root/bench/build-tools.sh" "$tools"

state="$root/.deps/harness-bench"
trap '"$root/Tests/harness/stop.sh" "$state" >/dev/null 2>&1 || true' EXIT
"$root/Tests/harness/start.sh" "$state" >/dev/null

doc="$root/docs/benchmarks.md" chart="$root/docs/benchmarks.svg"
if [[ " $* " == *" --smoke "* ]]; then
    doc="$tools/benchmarks.md" chart="$tools/benchmarks.svg"
    cp "$root/docs/benchmarks.md" "$doc"
fi
python3 "$root/bench/run.py" --env "$state/env" --baowrap "$root/dist/baowrap" --tools "$tools" \
    --doc "$doc" --chart "$chart" "$@"
