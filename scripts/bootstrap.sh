#!/usr/bin/env bash
# Installs what tapwire needs and is missing, and nothing else; a second run checks and
# returns in about a second. Debian/Ubuntu, as root (apt and npm are the only sources).
#
#   scripts/bootstrap.sh            build tools + runtime (npm start)
#   scripts/bootstrap.sh --test     also the programs the tests and benchmarks run (npm test)
#   scripts/bootstrap.sh --build-only
set -euo pipefail
cd "$(dirname "$0")/.."

BUN_VERSION=1.4.5
build_pkgs=(clang llvm bpftool libbpf-dev libbpf1)
# binutils: readelf checks tapwire's ELF reader; ruby, openssl: TLS peers and certificates;
# bpftrace: the peer of the TLS overhead benchmark; golang-go: Go test programs;
# nghttp2-server, nghttp2-client, nghttp2-proxy: HTTP/2 peers (nghttpd, h2load, nghttpx);
# python3-grpcio: a gRPC client; python3-websockets: WebSocket peers; podman, runc, debootstrap: real containers (a Debian image
# made locally, podman's Docker-compatible API); tshark: decrypts with tapwire keylog's file;
# gnutls-bin, wget: GnuTLS peers (gnutls-serv; wget is a GnuTLS client); libnss3-tools: NSS peers
# (tstclnt, selfserv, certutil, pk12util), libnss3-dev, libnspr4-dev: to build an NSS keep-alive client; chromium: the browser the web page's tests drive
# (puppeteer-core, no browser download); redis-server, redis-tools, python3-redis: Redis peers;
# prometheus: scrapes serve's /metrics in a test.
test_pkgs=(curl python3 nginx wrk iproute2 procps binutils ruby openssl bpftrace golang-go nghttp2-server nghttp2-client nghttp2-proxy python3-grpcio python3-websockets podman runc catatonit debootstrap tshark gnutls-bin wget libnss3-tools libnss3-dev libnspr4-dev chromium redis-server redis-tools python3-redis prometheus)

# golang-1.21/1.22/1.23 (bookworm-backports): Go programs of the newer releases, default,
# stripped and PIE builds each; the suite is added below when one of them is missing.
backport_pkgs=(golang-1.21-go golang-1.22-go golang-1.23-go)

want=("${build_pkgs[@]}")
case "${1:-}" in
  --test) want+=("${test_pkgs[@]}" "${backport_pkgs[@]}") ;;
  --build-only|"") ;;
  *) echo "bootstrap: unknown option $1" >&2; exit 2 ;;
esac

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "bootstrap: these packages are missing and installing them needs root: ${missing[*]}" >&2
    exit 2
  fi
  echo "bootstrap: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  if [[ " ${missing[*]} " == *" golang-1.2"* ]] && ! grep -rqs "bookworm-backports" /etc/apt/sources.list /etc/apt/sources.list.d/; then
    # Debian's own suite of newer packages for this release (Go 1.21-1.23 for the tests).
    printf 'Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' >/etc/apt/sources.list.d/tapwire-backports.sources
  fi
  apt-get update -q >&2
  apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
fi

# The TLS tests run node; machines of this kind have it, others get Debian's.
if [ "${1:-}" = --test ] && ! command -v node >/dev/null 2>&1; then
  echo "bootstrap: installing nodejs" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends nodejs >&2
fi

if ! command -v bun >/dev/null 2>&1; then
  echo "bootstrap: installing bun $BUN_VERSION from npm" >&2
  npm install -g "bun@$BUN_VERSION" >&2
fi

# JavaScript dependencies: installed again only when package.json or the lockfile changed.
stamp=node_modules/.tapwire-installed
if [ ! -f "$stamp" ] || [ package.json -nt "$stamp" ] || { [ -f bun.lock ] && [ bun.lock -nt "$stamp" ]; }; then
  bun install --frozen-lockfile >&2 || bun install >&2
  touch "$stamp"
fi
