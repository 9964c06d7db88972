#!/usr/bin/env bash
# Installs the Debian packages pgfeed builds and tests with, when any is missing. Idempotent.
set -euo pipefail
packages=(postgresql-15 postgresql-server-dev-15 postgresql-contrib libpq-dev g++ make cmake
          libgtest-dev clang libclang-rt-14-dev clang-format python3 python3-psycopg2
          libevent-dev libhiredis-dev libinih-dev libcjson-dev libjwt-dev redis-server python3-redis curl
          nginx openssl # test/notifier/reverse_proxy.py runs an nginx of its own, not the service
          chromium)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    echo "installing: ${missing[*]}"
    [ "$(id -u)" = 0 ] || { echo "need root to install ${missing[*]}" >&2; exit 1; }
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# The SSE gateway's EventSource tests (test/notifier/js), the demo page's browser test (test/e2e)
# and the browser client's tests (clients/js):
# node and npm (Debian's when the machine has none), then the packages each package-lock.json pins,
# again only when the lock changed.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    [ "$(id -u)" = 0 ] || { echo "need root to install nodejs and npm" >&2; exit 1; }
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi
# test/e2e drives the chromium above with playwright-core, which downloads no browser.
for js in "$(dirname "$0")/notifier/js" "$(dirname "$0")/e2e" "$(dirname "$0")/../clients/js"; do
    if [ ! "$js/node_modules/.package-lock.json" -nt "$js/package-lock.json" ]; then
        (cd "$js" && npm ci --no-audit --no-fund --loglevel=error)
    fi
done
