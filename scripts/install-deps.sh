#!/usr/bin/env bash
# Installs the Debian packages a target needs, only when something is
# missing, so repeated runs cost nothing. Usage: install-deps.sh GROUP...
set -euo pipefail

declare -A groups=(
  # libssl-dev: static libssl.a/libcrypto.a; dpkg-dev: `apt-get source curl`.
  [build]="libssl-dev dpkg-dev binutils file"
  # The real services the integration tests run against; gdb's gcore forces
  # a core of the (non-dumpable) wrapper for the memory-hygiene tests.
  [harness]="nginx python3-venv openssl curl jq gdb"
  # make ha: the HA lane's load balancers (nginx stream is a separate module).
  [ha]="haproxy libnginx-mod-stream"
  # make bench: the supervisor it is compared with, the chart, a C compiler
  # for its two small tools and Debian's shared libcurl (HTTP/2) for the
  # physical-limit client.
  [bench]="tini gnuplot-nox libcurl4 gcc libc6-dev"
  # make image: OCI image layout without a container daemon.
  [image]="umoci jq"
  # make e2e: the pods' static test app; unshare, setpriv, mount and chroot
  # come with util-linux, mount and coreutils (essential packages).
  [e2e]="busybox-static umoci"
)

wanted=()
for g in "$@"; do
  [ -n "${groups[$g]:-}" ] || { echo "install-deps.sh: unknown group $g" >&2; exit 2; }
  for p in ${groups[$g]}; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || wanted+=("$p")
  done
done
[ ${#wanted[@]} -eq 0 ] && exit 0

echo "install-deps.sh: installing ${wanted[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -qq --no-install-recommends "${wanted[@]}" >/dev/null 2>&1 || {
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${wanted[@]}" >/dev/null
}
