#!/usr/bin/env bash
# Builds the benchmark's C tools into DIR: the workload (bench/stamp) and the
# launcher (bench/launch), both static, and the physical-limit client
# (bench/limit), which links Debian's shared libcurl because that one speaks
# HTTP/2; its headers come from the static libcurl build, made from the same
# Debian curl source package.
# Usage: bench/build-tools.sh DIR
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=${1:?usage: build-tools.sh DIR}
curl_prefix=${CURL_STATIC_PREFIX:-$root/.deps/curl-static}
libcurl=$(ldconfig -p | awk '$1 == "libcurl.so.4" && /x86-64|aarch64/ { print $NF; exit }')
[[ -n $libcurl ]] || { echo "build-tools.sh: no libcurl.so.4 (apt-get install libcurl4)" >&2; exit 1; }
cc -O2 -Wall -static -o "$out/stamp" "$root/bench/stamp.c"
cc -O2 -Wall -static -o "$out/launch" "$root/bench/launch.c"
cc -O2 -Wall -I"$curl_prefix/include" -o "$out/limit" "$root/bench/limit.c" "$libcurl"
