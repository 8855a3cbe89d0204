#!/usr/bin/env bash
# Installs what wsgate needs from Debian's packages, only when something is missing.
#   scripts/install-deps.sh build   compiler, CMake and the libraries
#   scripts/install-deps.sh test    the above plus the independent test clients/servers
#                                   (HAProxy: the L4 balancer of the PROXY protocol tests)
#   scripts/install-deps.sh bench   the above plus nginx and nghttpx to compare with
set -euo pipefail

build=(g++ cmake ninja-build ccache pkg-config libevent-dev libssl-dev libnghttp2-dev
       libtomlplusplus-dev libjemalloc-dev prometheus-cpp-dev doctest-dev nlohmann-json3-dev python3 python3-websockets)
# clang + libclang-rt-dev: the libFuzzer targets (tests/fuzz/, -fsanitize=fuzzer).
# nodejs: the HTTP upstream of the HTTP forwarding tests (tests/integration/http_backend.js).
# dpkg-dev: dpkg-shlibdeps for the Debian package; systemd: systemd-analyze for the unit;
# python3-yaml: the Kubernetes manifests' test.
test=(clang-format python3-h2 curl nghttp2-client openssl procps chromium clang libclang-rt-dev haproxy
      nodejs dpkg-dev systemd python3-yaml)
# wrk: the HTTP forwarding benchmark's keep-alive GET load (bench/http_compare.py).
bench=(nginx-light nghttp2-proxy valgrind testssl.sh wrk)

want=("${build[@]}")
case "${1:-build}" in
  build) ;;
  test) want+=("${test[@]}") ;;
  bench) want+=("${test[@]}" "${bench[@]}") ;;
  *) echo "usage: $0 [build|test|bench]" >&2; exit 2 ;;
esac

missing=()
for pkg in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
install_packages() {
  echo "installing: ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -q
  # Debian starts nginx/haproxy services on install; policy-rc.d keeps them stopped.
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
    $SUDO chmod +x /usr/sbin/policy-rc.d
    trap '$SUDO rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
}
[ ${#missing[@]} -eq 0 ] || install_packages

# The Socket.IO test's server and client: npm packages at the exact versions of the
# lockfile tests/integration/socketio/package-lock.json (npm ci), installed again only
# when the lockfile changed (a copy of it is kept as the stamp).
if [ "${1:-build}" != build ]; then
  cd "$(dirname "$0")/.."
  sio=tests/integration/socketio
  if ! cmp -s "$sio/package-lock.json" "$sio/node_modules/.wsgate-lock.json"; then
    if ! command -v npm >/dev/null; then
      [ "$(id -u)" -eq 0 ] || SUDO="sudo"
      ${SUDO:-} apt-get install -y -q --no-install-recommends npm
    fi
    echo "installing: $sio (npm ci)"
    npm ci --prefix "$sio" --no-audit --no-fund --loglevel=error
    cp "$sio/package-lock.json" "$sio/node_modules/.wsgate-lock.json"
  fi
fi
