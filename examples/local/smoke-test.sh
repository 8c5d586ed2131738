#!/usr/bin/env bash
# A smoke test for a laptop or a CI job, against any OpenBao: resolve every
# configured secret (`baowrap check`: a table, never a value), then run a
# child through baowrap and count each variable in its environment (counts
# only: no value is ever printed).
#
# Usage: examples/local/smoke-test.sh [BAOWRAP OPTIONS...]
# Configuration comes from the options and the BAOWRAP_* environment, exactly
# as in a pod; BAOWRAP (default: baowrap on PATH) names the binary.
# Exit status: 0 when every variable arrived, 1 when one did not, or
# baowrap's own status when check fails.
set -euo pipefail
baowrap=${BAOWRAP:-baowrap}

echo "== baowrap check"
table=$("$baowrap" "$@" check) || { status=$?; echo "$table"; exit "$status"; }
echo "$table"

echo "== baowrap -- env"
# The table's first column, without the header: NAME, or PREFIX* for --from-path.
names=$(awk 'NR > 1 { print $1 }' <<<"$table")
# One run; awk sees the child's environment and prints only counts.
counts=$("$baowrap" "$@" -- env | awk -v names="$names" '
    BEGIN { n = split(names, want, "\n") }
    {
        for (i = 1; i <= n; i++) {
            w = want[i]
            if (w ~ /\*$/) { if (index($0, substr(w, 1, length(w) - 1)) == 1) seen[w]++ }
            else if (index($0, w "=") == 1) seen[w]++
        }
    }
    END { for (i = 1; i <= n; i++) print want[i] ": " (seen[want[i]] + 0) }')
echo "$counts"
if grep -q ': 0$' <<<"$counts"; then
    echo "FAILED: a variable is missing from the child's environment" >&2
    exit 1
fi
echo "ok: every secret reached the child's environment"
