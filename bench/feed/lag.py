#!/usr/bin/env python3
"""Lag of pgfeed's write path: from COMMIT returning to the item showing in pgfeed.page, and to its
event arriving in the Redis stream.

Run by bench/feed/writes.sh, which starts the PostgreSQL (fsync on, synchronous_commit on, pgfeed
preloaded) this connects to through PGHOST. This makes a database of its own with 100,000
activities in an attached table and as many in a bare copy, and starts a redis-server (AOF on,
appendfsync everysec) and one pgfeed-notifier with its default settings (test/notifier/_servers.py).

Each phase: a paced generator (1 connection at 100 inserts/s, 4 at 1,000/s) commits one-row INSERT
transactions on a fixed schedule and records, per row, the moment its COMMIT returned. Two other
processes watch:
  - a poller calls pgfeed.page('<a reader>', 'all', 20) from its own session every millisecond
    (paging down while a page holds only new items) and records when it first returns each item.
    Visible in page means returned by the function apps call to show it, for that very item: a
    counter (count_since, the highest position) says that something new is there, not which item,
    and on a write path that numbers after commit a counter could run ahead of what a page
    returns. The time taken is when the call returned, an upper bound (the poll interval and the
    call's duration are the resolution, both in the report);
  - a reader sits in XREAD BLOCK on the stream (as bench/notifier/latency.py does) and records when
    each insert event arrives.
The baseline phase at each rate runs the same generator against the bare table, polled as often for
the rows above the highest id below which every row was seen (ids are taken before commit: a
newest-first page of a plain table would miss a row that commits after 20 higher ones), with the
generator XADDing each row to a stream of its own right after its COMMIT: the floor of the method
(poll interval, round trips, Python, this machine) with no pgfeed in the way. All times are
CLOCK_MONOTONIC of this machine; a negative value means the watcher saw the row before the COMMIT
reply reached the generator.
"""
import argparse
import json
import multiprocessing
import os
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'notifier'))
from latency import machine_facts, percentile  # noqa: E402  (also puts test/notifier on sys.path)
from _servers import STREAM, Notifier, RedisServer, TestDatabase, TestFailure, connect, wait_until  # noqa: E402

HISTORY = 100000
RATES = {100: 1, 1000: 4}        # inserts/s: connections (each at most 250 commits/s)
POLL_INTERVAL = 0.001            # s between page polls
PAGE_SIZE = 20               # an app's first page
READER_USER = 'bench-lag-reader'
DIRECT_STREAM = 'bench:direct'   # the baseline's stream, XADDed by the generator itself
TARGETS = {'page': 20.0, 'stream': 30.0}  # p99 ms at TARGET_RATE
TARGET_RATE = 1000

SCHEMA = """
CREATE TABLE activities (
    id         bigserial PRIMARY KEY,
    mp_id      int,
    kind       text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO activities (mp_id, kind, created_at)
SELECT 1 + (random() * 649)::int, 'vote', now() - (%(n)s - i) * interval '1 minute' FROM generate_series(1, %(n)s) i;
CREATE TABLE activities_bare (LIKE activities INCLUDING ALL);
CREATE SEQUENCE activities_bare_id_seq OWNED BY activities_bare.id;
ALTER TABLE activities_bare ALTER id SET DEFAULT nextval('activities_bare_id_seq');
INSERT INTO activities_bare SELECT * FROM activities;
SELECT setval('activities_bare_id_seq', %(n)s);
SELECT pgfeed.attach('public.activities', topic_column => 'mp_id', payload_columns => ARRAY['kind'],
                     id_column => 'id', created_column => 'created_at');
""" % {'n': HISTORY}

INSERT = "INSERT INTO %s (mp_id, kind) VALUES (1 + (random() * 649)::int, 'vote') RETURNING id"
# The feed: newest first, as an app's first page, and the page below a row (before => its
# position). Rows: (position, activity id).
PAGE = "PREPARE page(bigint) AS SELECT position, activity_id FROM pgfeed.page('%s', 'all', %d, $1, false)" % (
    READER_USER, PAGE_SIZE)
# The baseline: the bare table's rows above the highest id below which every row has been seen (ids
# are taken before commit, so a row can commit after higher ones: a newest-first LIMIT would miss it).
BARE_NEW = 'PREPARE page(bigint) AS SELECT id FROM activities_bare WHERE id > $1'


def has_flush(dbname):
    conn = connect(dbname, 'bench-lag-setup')
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
                        "WHERE n.nspname = 'pgfeed' AND p.proname = 'flush' AND p.prokind = 'p'")
            return cur.fetchone()[0] > 0
    finally:
        conn.close()


# -- watchers, processes of their own so that the generator's threads do not delay them -----------------

def poll_page(dbname, mode, stop, ready, seen_count, results):
    """Polls the newest page every POLL_INTERVAL until `stop`: {activity_id: when first returned}
    for the rows that were not there at the start, and the number and mean duration of polls."""
    conn = connect(dbname, 'bench-lag-poller')
    cur = conn.cursor()
    known, seen = set(), {}

    def poll_feed(record):
        # One page; while every row of it is new, the next one down (more than a page arrived).
        before = None
        while True:
            cur.execute('EXECUTE page(%s)', (before,))
            rows = cur.fetchall()
            now = time.monotonic()
            fresh = [aid for _pos, aid in rows if aid not in known]
            known.update(fresh)
            if record:
                for aid in fresh:
                    seen[aid] = now
            if len(fresh) < PAGE_SIZE or not record:
                return
            before = rows[-1][0]

    watermark = [0]

    def poll_bare(record):  # every row above the watermark is new: nothing to leave out
        cur.execute('EXECUTE page(%s)', (watermark[0],))
        rows = cur.fetchall()
        now = time.monotonic()
        for (aid,) in rows:
            if aid not in known:
                known.add(aid)
                seen[aid] = now
        while watermark[0] + 1 in known:
            watermark[0] += 1
            known.discard(watermark[0])

    if mode == 'feed':
        cur.execute(PAGE)
        poll = poll_feed
        poll(record=False)  # the newest page before the phase
    else:
        cur.execute('SELECT max(id) FROM activities_bare')
        watermark[0] = cur.fetchone()[0]
        cur.execute(BARE_NEW)
        poll = poll_bare
    ready.set()
    polls, busy = 0, 0.0
    started = due = time.monotonic()
    while not stop.is_set():
        due += POLL_INTERVAL
        pause = due - time.monotonic()
        if pause > 0:
            time.sleep(pause)  # the poll schedule
        else:
            due = time.monotonic()  # behind: poll now, do not burst to catch up
        t = time.monotonic()
        poll(record=True)
        busy += time.monotonic() - t
        polls += 1
        seen_count.value = len(seen)
    ran = time.monotonic() - started
    conn.close()
    results.send((seen, polls / ran if ran else 0.0, busy / polls if polls else 0.0))


def read_stream(port, stream, start_id, stop, ready, seen_count, results):
    """XREAD BLOCK on `stream` from start_id until `stop`: {activity_id: arrival} of insert events."""
    import redis
    client = redis.Redis(host='127.0.0.1', port=port, decode_responses=True)
    arrivals, last = {}, start_id
    ready.set()
    while not stop.is_set():
        reply = client.xread({stream: last}, count=10000, block=100)
        now = time.monotonic()
        for _stream, entries in reply or []:
            for entry_id, fields in entries:
                last = entry_id
                data = json.loads(fields['data'])
                if data.get('op') == 'insert':
                    arrivals[data['activity_id']] = now
        seen_count.value = len(arrivals)
    results.send(arrivals)


class Watcher:
    def __init__(self, target, args):
        ctx = multiprocessing.get_context('fork')
        self.stop = ctx.Event()
        self.ready = ctx.Event()
        self.count = ctx.Value('q', 0, lock=False)
        self.results, child_end = ctx.Pipe(duplex=False)
        self.proc = ctx.Process(target=target, args=args + (self.stop, self.ready, self.count, child_end), daemon=True)
        self.proc.start()

    def wait_ready(self, what):
        wait_until(lambda: self.ready.is_set() or not self.proc.is_alive(), what + ' to start', timeout=30, interval=0.01)
        if not self.ready.is_set():
            raise TestFailure(what + ' exited at start')

    def finish(self, expected, deadline):
        try:
            wait_until(lambda: self.count.value >= expected, '%d rows to be seen' % expected,
                       timeout=max(0.0, deadline - time.monotonic()), interval=0.01)
        except TestFailure:
            pass  # the report counts the missing rows
        self.stop.set()
        result = self.results.recv()
        self.proc.join(10)
        return result


def last_entry_id(client, stream):
    return client.xinfo_stream(stream)['last-generated-id'] if client.exists(stream) else '0-0'


# -- one phase -------------------------------------------------------------------------------------------

def phase(dbname, redis_server, mode, rate, seconds):
    conns = RATES[rate]
    interval = conns / rate  # per connection
    table = 'activities' if mode == 'feed' else 'activities_bare'
    stream = STREAM if mode == 'feed' else DIRECT_STREAM
    client = redis_server.client()
    poller = Watcher(poll_page, (dbname, mode))
    reader = Watcher(read_stream, (redis_server.port, stream, last_entry_id(client, stream)))
    poller.wait_ready('the page poller')
    reader.wait_ready('the stream reader')
    commits = []  # (COMMIT returned, id)
    lock = threading.Lock()
    t0 = time.monotonic() + 0.2

    def generate(index):
        conn = connect(dbname, 'bench-lag-generator-%d' % index)
        cur = conn.cursor()
        direct = redis_server.client() if mode == 'bare' else None
        k = 0
        while True:
            due = t0 + (k + index / conns) * interval
            if due > t0 + seconds:
                break
            time.sleep(max(0.0, due - time.monotonic()))  # the schedule, not a wait for a condition
            cur.execute(INSERT % table)  # autocommit: returns once committed
            aid = cur.fetchone()[0]
            returned = time.monotonic()
            if direct is not None:
                direct.xadd(DIRECT_STREAM, {'data': json.dumps({'op': 'insert', 'activity_id': aid})})
            with lock:
                commits.append((returned, aid))
            k += 1
        conn.close()

    threads = [threading.Thread(target=generate, args=(i,)) for i in range(conns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = max(c[0] for c in commits) - t0
    deadline = time.monotonic() + 30
    seen, polls_per_s, poll_ms = poller.finish(len(commits), deadline)
    arrivals = reader.finish(len(commits), deadline)
    result = {'mode': mode, 'rate': rate, 'conns': conns, 'rows': len(commits), 'achieved': len(commits) / elapsed,
              'polls_per_s': polls_per_s, 'poll_ms': 1000 * poll_ms}
    for what, times in (('page', seen), ('stream', arrivals)):
        lags = sorted(1000 * (times[aid] - returned) for returned, aid in commits if aid in times)
        result[what] = {'missing': len(commits) - len(lags), 'p50': percentile(lags, 50), 'p95': percentile(lags, 95),
                        'p99': percentile(lags, 99), 'max': lags[-1] if lags else None}
    return result


def warm_up(dbname, redis_server):
    """One insert through the whole path: the notifier leads and has moved everything before it."""
    conn = connect(dbname, 'bench-lag-setup')
    with conn.cursor() as cur:
        cur.execute(INSERT % 'activities')
        aid = cur.fetchone()[0]
    conn.close()
    client = redis_server.client()

    def arrived():
        last = client.xrevrange(STREAM, count=1) if client.exists(STREAM) else []
        return last and json.loads(last[0][1]['data']).get('activity_id') == aid
    wait_until(arrived, 'the warm-up insert to reach the stream', timeout=120, interval=0.05)


# -- the report --------------------------------------------------------------------------------------------

def fmt(value, spec='%.2f'):
    return '-' if value is None else spec % value


def report(facts, results, seconds, flush, runtime):
    lines = ['Lag: COMMIT returned in a paced generator (one-row inserts) -> the row returned by a page poll, and '
             '-> its event read by XREAD BLOCK; %g s per phase' % seconds]
    lines += ['  ' + f for f in facts]
    lines.append('  pgfeed: %s; page poll every %g ms: pgfeed.page(%r, \'all\', %d) from its own session' % (
        'pgfeed.flush() present (numbering after commit)' if flush else 'numbering at commit', 1000 * POLL_INTERVAL,
        READER_USER, PAGE_SIZE))
    lines.append('  baseline: the same generator into the bare table, polled as often for rows above the highest id '
                 'below which all were seen, and an XADD of each row by the generator right after its COMMIT')
    lines.append('')
    header = '%-7s %-9s %8s %5s %6s  %-28s  %-37s  %s' % (
        'path', 'rate', 'achieved', 'conns', 'rows', 'baseline p50 / p99 ms', 'pgfeed p50 / p95 / p99 / max ms',
        'missing  target')
    lines.append(header)
    lines.append('-' * len(header))
    verdicts = []
    for rate in sorted(RATES):
        base = next(r for r in results if r['rate'] == rate and r['mode'] == 'bare')
        feed = next(r for r in results if r['rate'] == rate and r['mode'] == 'feed')
        for what in ('page', 'stream'):
            b, f = base[what], feed[what]
            target = ''
            if rate == TARGET_RATE:
                # At the rate, or it does not count: a generator that fell behind its schedule was
                # held up in COMMIT, which lag measured from COMMIT returning does not show.
                kept_up = feed['achieved'] >= 0.95 * rate
                ok = f['p99'] is not None and f['p99'] < TARGETS[what] and not f['missing'] and kept_up
                target = 'p99 < %g ms: %s' % (TARGETS[what], 'PASS' if ok else 'FAIL')
                if not kept_up:
                    target += ' (commits reached only %.0f/s, the baseline %.0f/s)' % (feed['achieved'], base['achieved'])
                verdicts.append(('commit to %s p99 < %g ms at %d inserts/s' % (
                    'visible in page' if what == 'page' else 'stream', TARGETS[what], rate),
                    '%s ms, %d missing, %.0f inserts/s committed' % (fmt(f['p99']), f['missing'], feed['achieved']), ok))
            lines.append('%-7s %7d/s %6.0f/s %5d %6d  %-28s  %-37s  %7d  %s' % (
                what, rate, feed['achieved'], feed['conns'], feed['rows'],
                '%s / %s%s' % (fmt(b['p50']), fmt(b['p99']), ' (%d missing)' % b['missing'] if b['missing'] else ''),
                '%s / %s / %s / %s' % (fmt(f['p50']), fmt(f['p95']), fmt(f['p99']), fmt(f['max'])),
                f['missing'], target))
    lines.append('')
    lines.append('  page polls: %s' % ', '.join('%s %d/s: %.0f polls/s, %.2f ms each' % (
        r['mode'], r['rate'], r['polls_per_s'], r['poll_ms']) for r in results))
    lines.append('  baseline generator rates: %s' % ', '.join(
        '%d/s: %.0f/s' % (r['rate'], r['achieved']) for r in results if r['mode'] == 'bare'))
    lines.append('')
    lines.append('Lag targets')
    for what, value, ok in verdicts:
        lines.append('  %-4s  %-50s  %s' % ('PASS' if ok else 'FAIL', what, value))
    lines.append('')
    lines.append('lag runtime %.0f s' % runtime)
    return '\n'.join(lines) + '\n'


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--seconds', type=float, default=15, help='length of each phase (default 15)')
    parser.add_argument('--out', help='also write the report here')
    args = parser.parse_args()
    if args.seconds < 2:
        parser.error('--seconds must be at least 2')
    started = time.monotonic()
    with TestDatabase('bench_lag') as db:
        db.session('schema').execute(SCHEMA)
        flush = has_flush(db.name)
        if flush:
            db.session('flush').execute('CALL pgfeed.flush()')
        db.session('vacuum').execute('VACUUM ANALYZE')
        redis_server = RedisServer('bench-lag-redis').start()
        notifier = Notifier('bench-lag-notifier', db.name, redis_server).start()
        warm_up(db.name, redis_server)
        facts = machine_facts(db.name, redis_server)[2:]  # redis and notifier; writes.sh records the rest
        results = []
        for rate in sorted(RATES):
            for mode in ('bare', 'feed'):
                sys.stderr.write('[%s] lag, %s, %d inserts/s for %g s\n' % (time.strftime('%H:%M:%S'), mode, rate,
                                                                           args.seconds))
                results.append(phase(db.name, redis_server, mode, rate, args.seconds))
        if not notifier.alive():
            sys.stderr.write('the notifier exited during the benchmark:\n%s' % notifier.log_tail())
            return 1
        notifier.stop()
        redis_server.stop()
    text = report(facts, results, args.seconds, flush, time.monotonic() - started)
    sys.stdout.write(text)
    if args.out:
        with open(args.out, 'w') as f:
            f.write(text)
    return 0


if __name__ == '__main__':
    sys.exit(main())
