#!/usr/bin/env bash
# Builds a minimal static libcurl (HTTP/1.1 and HTTP/2 over OpenSSL, nothing
# else) from Debian's own curl source package, so the security patches Debian
# ships are in it, and installs it under $PREFIX with the static nghttp2 it
# needs. Idempotent: does nothing when $PREFIX already holds this build (its
# build-id); several checkouts may share one $PREFIX, hence the lock. Why a
# private apt config: fetching deb-src must not edit the machine's /etc/apt.
set -euo pipefail

PREFIX=${1:?usage: build-curl.sh PREFIX}
PREFIX=$(realpath -m "$PREFIX")
CURL_VERSION=${CURL_DEB_VERSION:-}   # empty: newest bookworm(-security) source
WORK=$(dirname "$PREFIX")/curl-build
# Changes whenever the configuration below does, so old builds are redone.
BUILD_ID="curl ${CURL_VERSION:-newest} http2 no-proxy nghttp2-wiping"

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
# HTTP/2 (nghttp2, Debian's libnghttp2-dev) lets every request share one TLS
# connection instead of up to 16.
./configure --prefix="$PREFIX" \
  --disable-shared --enable-static --with-pic --disable-dependency-tracking \
  --with-openssl --disable-openssl-auto-load-config \
  --without-ca-bundle --without-ca-path --without-ca-fallback \
  --enable-threaded-resolver --disable-ares --enable-ipv6 \
  --enable-http --disable-proxy --with-nghttp2 \
  --disable-ftp --disable-file --disable-ldap --disable-ldaps --disable-rtsp --disable-dict \
  --disable-telnet --disable-tftp --disable-pop3 --disable-imap --disable-smb --disable-smtp \
  --disable-gopher --disable-mqtt --disable-manual --disable-ntlm --disable-ntlm-wb --disable-tls-srp \
  --disable-unix-sockets --disable-cookies --disable-alt-svc --disable-hsts --disable-doh \
  --disable-mime --disable-netrc --disable-websockets --disable-libcurl-option \
  --without-zlib --without-brotli --without-zstd --without-libidn2 --without-libpsl \
  --without-ngtcp2 --without-nghttp3 --without-quiche --without-msh3 \
  --without-libssh2 --without-libssh --without-wolfssh --without-librtmp --without-libgsasl \
  --without-hyper --without-gssapi >"$WORK/configure.log" 2>&1 \
  || { tail -n 30 "$WORK/configure.log" >&2; exit 1; }
make -s -j"$(nproc)" -C lib >"$WORK/make.log" 2>&1 || { tail -n 30 "$WORK/make.log" >&2; exit 1; }
make -s -C lib install >/dev/null
make -s -C include install >/dev/null
grep -q 'HTTP2:.*enabled' "$WORK/configure.log" || { echo "build-curl.sh: HTTP/2 not enabled (libnghttp2-dev?)" >&2; exit 1; }
# libcurl does not hand its allocator to nghttp2, whose HPACK tables and
# frame buffers hold header values (the token, an inline-auth JWT): its
# malloc family is renamed to baowrap's wiping allocator (CBaoWrap/shims.c).
objcopy --redefine-sym malloc=bw_wiping_malloc --redefine-sym free=bw_wiping_free \
  --redefine-sym calloc=bw_wiping_calloc --redefine-sym realloc=bw_wiping_realloc \
  "/usr/lib/$(dpkg-architecture -qDEB_HOST_MULTIARCH)/libnghttp2.a" "$PREFIX/lib/libnghttp2.a"
echo "$BUILD_ID" >"$PREFIX/build-id"
echo "build-curl.sh: $(basename "$SRC") -> $PREFIX/lib/libcurl.a ($(stat -c %s "$PREFIX/lib/libcurl.a") bytes) + libnghttp2.a"
