#!/usr/bin/env bash
# Runs the demo page's end-to-end test (test/e2e, node's test runner): headless Chromium
# (/usr/bin/chromium, or PGFEED_CHROMIUM) drives the page against a PostgreSQL, redis-server and
# pgfeed-notifier (build/notifier/pgfeed-notifier, built by `make notifier`) that the test starts
# itself. Installs the npm packages of test/e2e when its lock changed; test/install-deps.sh installs
# the rest.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! test/e2e/node_modules/.package-lock.json -nt test/e2e/package-lock.json ]; then
    (cd test/e2e && npm ci --no-audit --no-fund --loglevel=error)
fi
tap=$(mktemp)
trap 'rm -f "$tap"' EXIT
# The spec reporter for people, TAP for the counts below.
if node --test --test-reporter=spec --test-reporter-destination=stdout \
        --test-reporter=tap --test-reporter-destination="$tap" test/e2e/; then status=0; else status=1; fi
passed=$(sed -n 's/^# pass \([0-9]*\)$/\1/p' "$tap" | tail -1)
failed=$(sed -n 's/^# fail \([0-9]*\)$/\1/p' "$tap" | tail -1)
cancelled=$(sed -n 's/^# cancelled \([0-9]*\)$/\1/p' "$tap" | tail -1)
passed=${passed:-0} failed=$((${failed:-0} + ${cancelled:-0}))
((status == 0 || failed > 0)) || failed=1 # a run that failed without saying so
echo "e2e: $passed passed, $failed failed"
[ "$failed" = 0 ] && [ "$passed" -gt 0 ]
