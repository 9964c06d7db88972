#!/usr/bin/env bash
# demo/web_root.sh OUTDIR: the demo page's web root, for pgfeed-notifier --http.static_dir=OUTDIR:
# the page, the browser client's modules beside it, and parliament.json, the names behind the ids of the feed
# (topics mp_id:N, payloads' bill_id), read from the PostgreSQL of PGHOST/PGPORT/PGUSER/PGDATABASE.
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: $0 OUTDIR" >&2; exit 64; }
demo=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$1"
cp "$demo"/web/* "$demo"/../clients/js/*.js "$1/"
psql -X -At -v ON_ERROR_STOP=1 >"$1/parliament.json" -c "
SELECT json_build_object(
    'mps', (SELECT json_agg(json_build_object('id', m.id, 'name', m.name, 'party', p.name) ORDER BY m.id)
              FROM mps m JOIN parties p ON p.id = m.party_id),
    'bills', (SELECT json_agg(json_build_object('id', b.id, 'title', b.title) ORDER BY b.id) FROM bills b))"
