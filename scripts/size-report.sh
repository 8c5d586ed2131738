#!/usr/bin/env bash
# Prints the stripped size of the in-pod binary against its 12 MB budget and
# what takes the space (largest archive members of the unstripped build).
set -euo pipefail
stripped=${1:?stripped binary}
unstripped=${2:?unstripped binary}
budget=$((12 * 1000 * 1000))
size=$(stat -c %s "$stripped")
printf 'baowrap stripped: %d bytes (%.2f MB), budget %d bytes: %s\n' "$size" "$(echo "$size/1000000" | bc -l)" "$budget" \
  "$([ "$size" -le "$budget" ] && echo within || echo OVER)"
printf 'baowrap unstripped: %d bytes\n' "$(stat -c %s "$unstripped")"
file "$stripped" | sed 's/^/file: /'
echo "ldd: $(ldd "$stripped" 2>&1 | head -n 1 | sed 's/^[[:space:]]*//')"
echo "sections (stripped):"
size -A "$stripped" | awk 'NR>2 && $2>100000 {printf "  %-22s %10d\n", $1, $2}'
