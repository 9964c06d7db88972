#!/usr/bin/env bash
# Runs the browser client's tests (clients/js, node's test runner): unit tests with fakes, clients
# against a node HTTP server that refuses them, the npm package packed and installed, the
# TypeScript declarations, the React hook and the token minter. Installs the npm packages of
# clients/js when its lock changed.
set -euo pipefail
cd "$(dirname "$0")/../clients/js"
if [ ! node_modules/.package-lock.json -nt package-lock.json ]; then
    npm ci --no-audit --no-fund --loglevel=error
fi
node --test
