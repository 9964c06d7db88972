#!/usr/bin/env bash
# Runs the notifier's fault tests (test/notifier/*.py) against a throwaway PostgreSQL; each test
# starts its own redis-server and pgfeed-notifier instances (build/notifier/pgfeed-notifier, built
# by `make notifier`), and needs the installed extension with its outbox. sse_gateway.py also uses
# curl and node with the npm packages of test/notifier/js, installed here when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! test/notifier/js/node_modules/.package-lock.json -nt test/notifier/js/package-lock.json ]; then
    (cd test/notifier/js && npm ci --no-audit --no-fund --loglevel=error)
fi
. test/pg_cluster.sh
work=$(mktemp -d /tmp/pgfeed-notifier-test.XXXXXX)
chmod 755 "$work" # the server runs as postgres when we are root
pg_cluster_start "$work/pg"
trap 'pg_cluster_stop; rm -rf "$work"' EXIT
passed=0 failed=0

for t in test/notifier/[!_]*.py; do
    [ -e "$t" ] || continue
    echo "== $t"
    # Each test file ends with its own "name: N passed, M failed" over its scenarios.
    if python3 "$t" | tee "$work/out"; then status=0; else status=1; echo "FAILED: $t"; fi
    summary=$(grep -E '^[a-z_]+: [0-9]+ passed, [0-9]+ failed$' "$work/out" | tail -1 || true)
    read -r p f <<<"$(sed -E 's/^[a-z_]+: ([0-9]+) passed, ([0-9]+) failed$/\1 \2/' <<<"${summary:-x: 0 passed, 1 failed}")"
    ((status == 0 || f > 0)) || f=1 # a file that failed without saying so
    passed=$((passed + p)) failed=$((failed + f))
done

if [ "$failed" != 0 ]; then
    echo "--- last lines of the PostgreSQL server log"
    tail -30 "$work/pg/server.log"
fi
echo "notifier: $passed passed, $failed failed"
[ "$failed" = 0 ] && [ "$passed" -gt 0 ]
