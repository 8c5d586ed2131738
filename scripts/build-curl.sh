#!/usr/bin/env bash
# Builds a minimal static libcurl (HTTP/HTTPS over OpenSSL, nothing else)
# from Debian's own curl source package, so the security patches Debian ships
# are in it, and installs it under $PREFIX. Idempotent: does nothing when $PREFIX already holds this build (its
# build-id); several checkouts may share one $PREFIX, hence the lock. Why a
# private apt config: fetching deb-src must not edit the machine's /etc/apt.
set -euo pipefail

PREFIX=${1:?usage: build-curl.sh PREFIX}
PREFIX=$(realpath -m "$PREFIX")
CURL_VERSION=${CURL_DEB_VERSION:-}   # empty: newest bookworm(-security) source
WORK=$(dirname "$PREFIX")/curl-build
# Changes whenever the configuration below does, so old builds are redone.
BUILD_ID="curl ${CURL_VERSION:-newest} http1 no-proxy"

mkdir -p "$(dirname "$PREFIX")"
exec 9>"$PREFIX.lock"
flock 9
if [ -f "$PREFIX/lib/libcurl.a" ] && [ -f "$PREFIX/include/curl/curl.h" ] \
    && [ "$(cat "$PREFIX/build-id" 2>/dev/null)" = "$BUILD_ID" ]; then
  exit 0
fi
rm -rf "$PREFIX/lib" "$PREFIX/include" "$PREFIX/build-id"

mkdir -p "$WORK/apt/lists/partial" "$WORK/apt/cache/archives/partial" "$WORK/apt/sources.list.d" "$WORK/src"
cat > "$WORK/apt/sources.list.d/src.sources" <<EOS
Types: deb deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb deb-src
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOS
cat > "$WORK/apt/apt.conf" <<EOS
Dir::Etc::SourceList "/dev/null";
Dir::Etc::SourceParts "$WORK/apt/sources.list.d";
Dir::State::Lists "$WORK/apt/lists";
Dir::Cache "$WORK/apt/cache";
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOS
export APT_CONFIG="$WORK/apt/apt.conf"
apt-get update -qq
rm -rf "$WORK/src"/*
( cd "$WORK/src" && apt-get source -qq "curl${CURL_VERSION:+=$CURL_VERSION}" 2>&1 | grep -v '^W: Download is performed unsandboxed' || true )
SRC=$(find "$WORK/src" -maxdepth 1 -type d -name 'curl-*' | head -n 1)
[ -n "$SRC" ] || { echo "build-curl.sh: apt-get source curl produced no source tree" >&2; exit 1; }

cd "$SRC"
# OpenSSL's config auto-load is disabled: a hostile /etc/ssl/openssl.cnf in
# the workload's image must not change TLS behaviour. No CA bundle or path is
# compiled in: baowrap always sets CURLOPT_CAINFO itself. No proxy support:
# baowrap ignores http_proxy and friends by design, now in the library too.
# No HTTP/2: measured (docs/benchmarks.md), it saves about 3 ms at ten paths
# for 180 KB of the binary's 12 MB budget, and brokers (nginx) rarely speak it.
./configure --prefix="$PREFIX" \
  --disable-shared --enable-static --with-pic --disable-dependency-tracking \
  --with-openssl --disable-openssl-auto-load-config \
  --without-ca-bundle --without-ca-path --without-ca-fallback \
  --enable-threaded-resolver --disable-ares --enable-ipv6 \
  --enable-http --disable-proxy \
  --disable-ftp --disable-file --disable-ldap --disable-ldaps --disable-rtsp --disable-dict \
  --disable-telnet --disable-tftp --disable-pop3 --disable-imap --disable-smb --disable-smtp \
  --disable-gopher --disable-mqtt --disable-manual --disable-ntlm --disable-ntlm-wb --disable-tls-srp \
  --disable-unix-sockets --disable-cookies --disable-alt-svc --disable-hsts --disable-doh \
  --disable-mime --disable-netrc --disable-websockets --disable-libcurl-option \
  --without-zlib --without-brotli --without-zstd --without-libidn2 --without-libpsl \
  --without-nghttp2 --without-ngtcp2 --without-nghttp3 --without-quiche --without-msh3 \
  --without-libssh2 --without-libssh --without-wolfssh --without-librtmp --without-libgsasl \
  --without-hyper --without-gssapi >"$WORK/configure.log" 2>&1 \
  || { tail -n 30 "$WORK/configure.log" >&2; exit 1; }
make -s -j"$(nproc)" -C lib >"$WORK/make.log" 2>&1 || { tail -n 30 "$WORK/make.log" >&2; exit 1; }
make -s -C lib install >/dev/null
make -s -C include install >/dev/null
echo "$BUILD_ID" >"$PREFIX/build-id"
echo "build-curl.sh: $(basename "$SRC") -> $PREFIX/lib/libcurl.a ($(stat -c %s "$PREFIX/lib/libcurl.a") bytes)"
