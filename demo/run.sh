#!/usr/bin/env bash
# make demo: a private PostgreSQL in .demo/, the sample parliament, and a tour of the SQL API.
set -euo pipefail
cd "$(dirname "$0")/.."
. test/pg_cluster.sh
PG_CLUSTER_DIR=$PWD/.demo pg_cluster_stop # a demo left running before
rm -rf .demo
pg_cluster_start "$PWD/.demo"
psql -X -q -v ON_ERROR_STOP=1 -f demo/parliament.sql >/dev/null

show() { printf '\n\033[1m%s\033[0m\n' "$1"; psql -X -q -v ON_ERROR_STOP=1 -c "$2"; }
show "alice's unread badge, all and following" \
     "SELECT pgfeed.unread_count('alice', 'all') AS all, pgfeed.unread_count('alice', 'following') AS following"
show "alice's first page of unread items she follows, joined to the app's tables" \
     "SELECT p.position, p.activity_id, a.type, m.name AS mp, b.title AS bill, p.created_at, p.is_read
        FROM pgfeed.page('alice', 'following', 5, unread_only => true) p
        JOIN activities a ON a.id = p.activity_id JOIN mps m ON m.id = a.mp_id LEFT JOIN bills b ON b.id = a.bill_id
       ORDER BY p.position DESC"
show "a new vote by MP 7 arrives (committed: it takes the next position)" \
     "INSERT INTO activities (type, mp_id, bill_id, created_at) VALUES ('vote', 7, 3, now())"
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

if [ -t 0 ]; then
    echo
    echo "PostgreSQL is running in .demo/. Explore with:  psql -h $PWD/.demo -U postgres"
    echo "Press Ctrl-C to stop it."
    trap 'echo; echo stopping; exit 0' INT
    while :; do sleep 3600; done
fi
