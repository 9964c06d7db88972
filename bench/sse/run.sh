#!/usr/bin/env bash
# SSE gateway benchmark: pgfeed-notifier's HTTP gateway against nchan (nginx), the same load client
# and scenarios for both (bench/sse/bench.py does the measuring): 100,000 idle connections held,
# a 10 events/s broadcast to 10,000 connections, and the highest delivered events/s at 10,000.
# Prints one table, also written to build/bench/sse.txt. About 10 to 15 minutes.
#
#   bench/sse/run.sh [--servers nchan,notifier] [--seconds N] [...]   (bench/sse/bench.py --help)
#
# BENCH_SECONDS sets the broadcast window (default 20; the rate ladder uses half of it). Needs the
# installed extension (0.2.0 or later) and build/notifier/pgfeed-notifier (make notifier) for the
# notifier's side; nginx-light and libnginx-mod-nchan are installed here when missing (as root).
set -euo pipefail
cd "$(dirname "$0")/../.."
mkdir -p build/bench

need=()
for p in nginx-light libnginx-mod-nchan libevent-dev pkg-config; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if ((${#need[@]})); then
    [ "$(id -u)" = 0 ] || { echo "bench/sse: need ${need[*]} (apt-get install as root)" >&2; exit 2; }
    # policy-rc.d (present in containers) keeps the package from starting a system nginx; none is used.
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
make -s -C bench/sse

# 100,000 connections arrive faster than the default accept queues drain.
if [ "$(id -u)" = 0 ]; then
    sysctl -q -w net.core.somaxconn=65535 net.ipv4.tcp_max_syn_backlog=65535 || true
fi

. test/pg_cluster.sh
work=$(mktemp -d /tmp/pgfeed-bench-sse.XXXXXX)
chmod 755 "$work" # the server runs as postgres when we are root
cleanup() {
    pg_cluster_stop
    rm -rf "$work"
}
PG_FSYNC=on pg_cluster_start "$work/pg"
trap cleanup EXIT

python3 bench/sse/bench.py --out build/bench/sse.txt --json build/bench/sse.json "$@"
