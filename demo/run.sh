#!/usr/bin/env bash
# make demo: a private PostgreSQL, redis-server and pgfeed-notifier in .demo/, the sample
# parliament, a tour of the SQL API, and the events it caused arriving in the Redis stream. In a
# terminal it then serves the live demo page while a new activity arrives every second.
set -euo pipefail
cd "$(dirname "$0")/.."
. test/pg_cluster.sh
PG_CLUSTER_DIR=$PWD/.demo pg_cluster_stop # a demo left running before
[ -f .demo/redis.pid ] && kill "$(cat .demo/redis.pid)" 2>/dev/null || true
rm -rf .demo
pg_cluster_start "$PWD/.demo"
psql -X -q -v ON_ERROR_STOP=1 -f demo/parliament.sql -f demo/generator.sql >/dev/null
demo/web_root.sh .demo/web

# Redis on a unix socket in .demo/ (no TCP port to collide with), the notifier beside it. The
# config file lets the page's visitor restart Redis with `redis-server .demo/redis.conf`.
cat >.demo/redis.conf <<CONF
port 0
unixsocket $PWD/.demo/redis.sock
dir $PWD/.demo
appendonly yes
daemonize yes
pidfile $PWD/.demo/redis.pid
logfile $PWD/.demo/redis.log
CONF
redis-server .demo/redis.conf
# Its HTTP gateway and the page on a free port, with a secret of this run for the tokens.
secret=$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')
build/notifier/pgfeed-notifier --postgres.conninfo="host=$PWD/.demo dbname=postgres user=postgres" \
    --redis.socket="$PWD/.demo/redis.sock" --http.port=0 --http.static_dir="$PWD/.demo/web" \
    --auth.hs256_secrets="$secret" 2>"$PWD/.demo/notifier.log" &
notifier=$!
generator= idle=
stop_all() {
    local pid
    for pid in $idle $generator $notifier; do
        kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
    done
    [ -f .demo/redis.pid ] && kill "$(cat .demo/redis.pid)" 2>/dev/null || true
    pg_cluster_stop
}
trap stop_all EXIT
redis() { redis-cli -s "$PWD/.demo/redis.sock" "$@"; }

show() { printf '\n\033[1m%s\033[0m\n' "$1"; psql -X -q -P pager=off -v ON_ERROR_STOP=1 -c "$2"; }
show "alice's unread badge, all and following" \
     "SELECT pgfeed.unread_count('alice', 'all') AS all, pgfeed.unread_count('alice', 'following') AS following"
show "alice's first page of unread items she follows, joined to the app's tables" \
     "SELECT p.position, p.activity_id, a.type, m.name AS mp, b.title AS bill, p.created_at, p.is_read
        FROM pgfeed.page('alice', 'following', 5, unread_only => true) p
        JOIN activities a ON a.id = p.activity_id JOIN mps m ON m.id = a.mp_id LEFT JOIN bills b ON b.id = a.bill_id
       ORDER BY p.position DESC"
show "a new vote by MP 7 arrives (committed, then numbered: it takes the next position a moment later)" \
     "INSERT INTO activities (type, mp_id, bill_id, created_at) VALUES ('vote', 7, 3, now()); CALL pgfeed.flush()"
show "the 'N new activities' toast above the position alice last saw, and her badge" \
     "SELECT pgfeed.count_since('alice', 'following', (SELECT max(position) - 1 FROM pgfeed.items)) AS new,
             pgfeed.unread_count('alice', 'following') AS badge"
show "alice reads it: mark_read returns how many items changed" \
     "SELECT pgfeed.mark_read('alice', ARRAY[(SELECT max(id) FROM activities)]) AS newly_read"
show "the round trip: is_read and her badge" \
     "SELECT pgfeed.is_read('alice', (SELECT max(id) FROM activities)), pgfeed.unread_count('alice', 'following') AS badge"
show "mark all she follows read" "SELECT pgfeed.mark_all_read('alice', 'following') AS marked"
show "badge" "SELECT pgfeed.unread_count('alice', 'following') AS badge"
show "bob read everything up to 15000 at once, then every third item up to 19900" \
     "SELECT position, activity_id, is_read FROM pgfeed.page('bob', 'all', 6, before => 19900)"

# The notifier moved every committed event into the stream; wait (at most 10 s) for the last one.
last_event=$(psql -X -At -c "SELECT max(event_id) FROM pgfeed.events")
for _ in $(seq 100); do
    [ "$(redis XREVRANGE pgfeed:events + - COUNT 1 | sed -n 8p)" = "$last_event" ] && break
    sleep 0.1
done
printf '\n\033[1m%s\033[0m\n' "the stream pgfeed:events: $(redis XLEN pgfeed:events) events; the newest three"
redis XREVRANGE pgfeed:events + - COUNT 3

port=$(sed -n 's/.*msg=listening .*port=\([0-9]*\).*/\1/p' .demo/notifier.log | head -1)
token=$(demo/token.py "$secret" alice)
printf '\n\033[1m%s\033[0m\n' "alice's event stream (Server-Sent Events), replayed from her first event"
first=$(redis XRANGE pgfeed:events - + COUNT 1 | sed -n 1p)
curl -sN --max-time 1 -H "Authorization: Bearer $token" -H "Last-Event-ID: $first" \
    "http://127.0.0.1:$port/v1/stream" | grep -E '^(event|id): ' | tail -6 || true

if [ -t 0 ]; then
    # A new activity every second; the check lets the backend notice when psql is gone.
    psql -X -q -c "SET client_connection_check_interval = '1s'" -c "CALL generate_activities(1.0)" \
        2>.demo/generator.log &
    generator=$!
    page=http://127.0.0.1:$port/
    printf '\n\033[1m%s\033[0m\n' "the live demo page (a new activity every second)"
    echo "  alice: $page#token=$token"
    echo "  bob:   $page#token=$(demo/token.py "$secret" bob)"
    echo "Open alice's page in two tabs: mark items read (one, or all) in one and watch the other follow;"
    echo "follow an MP in the side panel and switch between Following and All. Stop Redis with"
    echo "'redis-cli -s .demo/redis.sock shutdown': the page turns amber and polls the feed API until"
    echo "'redis-server .demo/redis.conf' brings push back (append &poll=1000 to the address to poll faster)."
    echo
    echo "PostgreSQL, Redis and pgfeed-notifier are running in .demo/. Explore with:"
    echo "  psql -h $PWD/.demo -U postgres"
    echo "  redis-cli -s $PWD/.demo/redis.sock XREAD BLOCK 0 STREAMS pgfeed:events '\$'"
    echo "  curl -H 'Authorization: Bearer $token' '${page}v1/feed?feed=following&limit=3'"
    echo "  curl ${page}readyz; curl ${page}metrics"
    echo "Press Ctrl-C to stop them."
    # Ctrl-C, kill, or the terminal closed; a second signal must not cut the cleanup short.
    trap 'trap "" INT TERM HUP; echo; echo stopping; exit 0' INT TERM HUP
    # A trap runs only once the foreground command ends; `wait` ends at once for a trapped signal.
    sleep infinity &
    idle=$!
    wait "$idle"
fi
