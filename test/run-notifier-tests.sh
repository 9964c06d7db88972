#!/usr/bin/env bash
# Runs the notifier's fault tests (test/notifier/*.py) against a throwaway PostgreSQL; each test
# starts its own redis-server and pgfeed-notifier instances (build/notifier/pgfeed-notifier, built
# by `make notifier`), and needs the installed extension with its outbox.
set -euo pipefail
cd "$(dirname "$0")/.."
. test/pg_cluster.sh
work=$(mktemp -d /tmp/pgfeed-notifier-test.XXXXXX)
chmod 755 "$work" # the server runs as postgres when we are root
pg_cluster_start "$work/pg"
trap 'pg_cluster_stop; rm -rf "$work"' EXIT
passed=0 failed=0

for t in test/notifier/[!_]*.py; do
    [ -e "$t" ] || continue
    echo "== $t"
    if python3 "$t"; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAILED: $t"; fi
done

if [ "$failed" != 0 ]; then
    echo "--- last lines of the PostgreSQL server log"
    tail -30 "$work/pg/server.log"
fi
echo "notifier: $passed passed, $failed failed"
[ "$failed" = 0 ] && [ "$passed" -gt 0 ]
