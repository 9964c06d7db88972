#!/usr/bin/env python3
"""pgfeed-notifier benchmark: commit-to-stream latency at paced rates, and the maximum sustained rate.

Run by bench/notifier/run.sh, which starts the PostgreSQL (fsync on) this connects to through
PGHOST. This starts a redis-server (AOF on, appendfsync everysec) and one pgfeed-notifier with its
default settings (test/notifier/_servers.py), in a database of its own with `activities` attached.

Latency, at each paced rate: several connections commit multi-row INSERT transactions on a fixed
schedule and record, per transaction, the moment the COMMIT returned and the activity ids it
inserted; a reader process sits in XREAD BLOCK on the stream and records the moment each insert
event arrives. Latency is arrival minus commit return, both CLOCK_MONOTONIC of this machine (a
negative value means the event reached Redis before the COMMIT reply reached the client).

Maximum: connections insert large transactions as fast as they can; every second the number of
committed events and the stream's entries-added counter are sampled. The moved rate is the
stream's growth over the window, the backlog what was committed but is not in the stream yet.
"""
import argparse
import datetime
import json
import multiprocessing
import os
import platform
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'test', 'notifier'))
from _servers import (NOTIFIER_BIN, STREAM, FeedDatabase, Notifier, RedisServer, TestFailure, connect, query,  # noqa: E402
                      wait_until)

TARGET_RATE = 20000            # events/s sustained
TARGET_P99_MS = 10.0           # at 1,000 events/s
TARGET_P99_RATE = 1000
# Per paced rate: rows per transaction and connections. Each connection commits 50 to 100
# transactions a second, which it keeps up with under fsync on: many commits to measure.
PACED = {100: (1, 1), 1000: (5, 2), 10000: (50, 4)}
MAX_CONNECTIONS = 4
MAX_ROWS = 1000
ROWS = "INSERT INTO activities (mp_id, kind) SELECT 1 + (random() * 649)::int, 'vote' FROM generate_series(1, %s)"


def stream_entries_added(client):
    """Entries ever added to the stream (XINFO STREAM entries-added: MAXLEN trimming does not lower it)."""
    if not client.exists(STREAM):
        return 0
    return client.xinfo_stream(STREAM)['entries-added']


def last_entry_id(client):
    return client.xinfo_stream(STREAM)['last-generated-id'] if client.exists(STREAM) else '0-0'


# -- the stream reader, a process of its own so that the generator's threads do not delay it ---------

def read_arrivals(port, start_id, stop, arrived, results):
    """XREAD BLOCK from start_id until `stop`: {activity_id: arrival} of insert events."""
    import redis
    client = redis.Redis(host='127.0.0.1', port=port, decode_responses=True)
    arrivals, last = {}, start_id
    while not stop.is_set():
        reply = client.xread({STREAM: last}, count=10000, block=100)
        now = time.monotonic()
        for _stream, entries in reply or []:
            for entry_id, fields in entries:
                last = entry_id
                data = json.loads(fields['data'])
                if data.get('op') == 'insert':
                    arrivals[data['activity_id']] = now
        arrived.value = len(arrivals)
    results.send(arrivals)


class Reader:
    def __init__(self, redis_server):
        ctx = multiprocessing.get_context('fork')
        self.stop = ctx.Event()
        self.arrived = ctx.Value('q', 0, lock=False)
        self.results, child_end = ctx.Pipe(duplex=False)
        start_id = last_entry_id(redis_server.client())
        self.proc = ctx.Process(target=read_arrivals, args=(redis_server.port, start_id, self.stop, self.arrived, child_end),
                                daemon=True)
        self.proc.start()

    def finish(self, expected, timeout):
        """Waits until `expected` insert events arrived (or timeout); returns the arrivals."""
        try:
            wait_until(lambda: self.arrived.value >= expected, '%d events to arrive' % expected, timeout, interval=0.05)
        except TestFailure:
            pass  # the report counts the missing events
        self.stop.set()
        arrivals = self.results.recv()
        self.proc.join(10)
        return arrivals


# -- generators ------------------------------------------------------------------------------------------

def paced_phase(dbname, redis_server, rate, seconds):
    rows, conns = PACED[rate]
    interval = rows * conns / rate  # per connection
    commits = []  # (commit returned, ids)
    lock = threading.Lock()
    reader = Reader(redis_server)
    t0 = time.monotonic() + 0.2

    def generate(index):
        conn = connect(dbname, 'bench-paced-%d' % index)
        cur = conn.cursor()
        k = 0
        while True:
            due = t0 + (k + index / conns) * interval
            if due > t0 + seconds:
                break
            time.sleep(max(0.0, due - time.monotonic()))  # the schedule, not a wait for a condition
            cur.execute(ROWS + ' RETURNING id', (rows,))  # autocommit: returns once committed
            ids = [r[0] for r in cur.fetchall()]
            returned = time.monotonic()
            with lock:
                commits.append((returned, ids))
            k += 1
        conn.close()

    threads = [threading.Thread(target=generate, args=(i,)) for i in range(conns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = max(c[0] for c in commits) - t0
    generated = sum(len(ids) for _, ids in commits)
    arrivals = reader.finish(generated, timeout=30)
    latencies, missing = [], 0
    for returned, ids in commits:
        for aid in ids:
            if aid in arrivals:
                latencies.append(1000 * (arrivals[aid] - returned))
            else:
                missing += 1
    latencies.sort()
    return {'rate': rate, 'rows': rows, 'conns': conns, 'events': generated, 'achieved': generated / elapsed,
            'missing': missing, 'p50': percentile(latencies, 50), 'p95': percentile(latencies, 95),
            'p99': percentile(latencies, 99), 'max': latencies[-1] if latencies else None}


def percentile(sorted_values, p):
    if not sorted_values:
        return None
    rank = max(1, int(round(p / 100 * len(sorted_values))))
    return sorted_values[min(rank, len(sorted_values)) - 1]


class FullSpeed:
    """MAX_CONNECTIONS connections committing MAX_ROWS-row inserts as fast as they can."""

    def __init__(self, dbname):
        self.committed = [0] * MAX_CONNECTIONS
        self.stop_event = threading.Event()
        self.threads = [threading.Thread(target=self._generate, args=(dbname, i)) for i in range(MAX_CONNECTIONS)]
        for t in self.threads:
            t.start()

    def _generate(self, dbname, index):
        conn = connect(dbname, 'bench-max-%d' % index)
        cur = conn.cursor()
        while not self.stop_event.is_set():
            cur.execute(ROWS, (MAX_ROWS,))
            self.committed[index] += cur.rowcount
        conn.close()

    def total(self):
        return sum(self.committed)

    def stop(self):
        self.stop_event.set()
        for t in self.threads:
            t.join()
        return self.total()


def wait_moved(client, added0, count, timeout):
    """Seconds until the stream has taken `count` events since entries-added was added0; None on timeout."""
    started = time.monotonic()
    try:
        wait_until(lambda: stream_entries_added(client) - added0 >= count, 'the stream to take %d events' % count,
                   timeout=timeout, interval=0.02)
    except TestFailure:
        return None
    return time.monotonic() - started


def max_phase(dbname, redis_server, seconds):
    """Full speed with the notifier running: generated and moved rates, the backlog each second."""
    client = redis_server.client()
    added0 = stream_entries_added(client)
    generator = FullSpeed(dbname)
    t0 = time.monotonic()
    samples = []  # (t, committed, moved)
    while time.monotonic() - t0 < seconds:
        time.sleep(1.0)  # the sampling period
        samples.append((time.monotonic() - t0, generator.total(), stream_entries_added(client) - added0))
    generated = generator.stop()
    drain = wait_moved(client, added0, generated, timeout=120)
    # The rates over the window after the first second (connections warming up).
    (ta, ga, ma), (tb, gb, mb) = samples[0], samples[-1]
    return {'conns': MAX_CONNECTIONS, 'rows': MAX_ROWS, 'seconds': tb - ta,
            'generated_rate': (gb - ga) / (tb - ta), 'moved_rate': (mb - ma) / (tb - ta),
            # A commit can reach the stream before its client hears it returned: never below 0.
            'backlog_end': max(0, gb - mb), 'backlog_max': max(0, max(g - m for _, g, m in samples)), 'drain': drain,
            'samples': samples}


def catch_up_phase(dbname, redis_server, notifier, seconds):
    """The bridge's own speed, whatever the generator's: events pile up in the outbox while the
    notifier is stopped, then it is started and timed until the stream has them all."""
    client = redis_server.client()
    notifier.stop()
    added0 = stream_entries_added(client)
    generator = FullSpeed(dbname)
    time.sleep(seconds)  # the length of the pile-up
    backlog = generator.stop()
    notifier.start()
    took = wait_moved(client, added0, backlog, timeout=120)
    return {'backlog': backlog, 'seconds': took, 'rate': backlog / took if took else None}


# -- the report ---------------------------------------------------------------------------------------------

def machine_facts(dbname, redis_server):
    def show(name):
        return query(dbname, 'SHOW %s' % name)[0][0]
    memory = ''
    with open('/proc/meminfo') as f:
        for line in f:
            if line.startswith('MemTotal'):
                memory = '%.1f GiB' % (int(line.split()[1]) / 1048576)
    cpu = next((line.split(':', 1)[1].strip() for line in subprocess.run(['lscpu'], capture_output=True, text=True)
                .stdout.splitlines() if line.startswith('Model name')), platform.processor())
    version = subprocess.run([NOTIFIER_BIN, '--version'], capture_output=True, text=True).stdout.strip()
    pg = query(dbname, 'SELECT version()')[0][0].split(' on ')[0]
    rc = redis_server.client().config_get('append*')
    return [
        'machine: nproc=%d; CPU=%s; memory=%s; %s' % (os.cpu_count(), cpu, memory, platform.platform()),
        'postgres: %s; fsync=%s; synchronous_commit=%s; wal_sync_method=%s; shared_buffers=%s' % (
            pg, show('fsync'), show('synchronous_commit'), show('wal_sync_method'), show('shared_buffers')),
        'redis: %s; appendonly=%s; appendfsync=%s' % (redis_server.version(), rc.get('appendonly'),
                                                      rc.get('appendfsync')),
        'notifier: %s, default settings (one instance)' % version,
    ]


def fmt(value, spec='%.2f'):
    return '-' if value is None else spec % value


def report(facts, paced, best, catch_up, seconds, runtime):
    lines = ['pgfeed-notifier benchmark, %s' % datetime.datetime.now().strftime('%Y-%m-%d %H:%M'), ''] + facts + ['']
    lines.append('Commit-to-stream latency: COMMIT returned in the client -> insert event read by an XREAD BLOCK '
                 'client, %d s per rate' % seconds)
    lines.append('%10s %10s %9s %6s %8s %8s %8s %8s %8s %8s  %s' % (
        'rate', 'achieved', 'rows/txn', 'conns', 'events', 'missing', 'p50 ms', 'p95 ms', 'p99 ms', 'max ms', 'target'))
    for r in paced:
        target = ''
        if r['rate'] == TARGET_P99_RATE:
            target = 'p99 < %g ms: %s' % (TARGET_P99_MS, 'met' if r['p99'] is not None and r['p99'] < TARGET_P99_MS
                                          and not r['missing'] else 'NOT MET')
        lines.append('%8d/s %8.0f/s %9d %6d %8d %8d %8s %8s %8s %8s  %s' % (
            r['rate'], r['achieved'], r['rows'], r['conns'], r['events'], r['missing'], fmt(r['p50']), fmt(r['p95']),
            fmt(r['p99']), fmt(r['max']), target))
    lines.append('')
    lines.append('Maximum sustained rate: %d connections committing %d-row inserts as fast as they can, '
                 'measured over %.0f s' % (best['conns'], best['rows'], best['seconds']))
    lines.append('  generated (committed) %10.0f events/s' % best['generated_rate'])
    # Sustained: the outbox stays drained, less than a second of events behind at the end.
    sustained = best['backlog_end'] < best['moved_rate']
    lines.append('  moved into the stream %10.0f events/s   target >= %d events/s sustained: %s%s' % (
        best['moved_rate'], TARGET_RATE, 'met' if best['moved_rate'] >= TARGET_RATE and sustained else 'NOT MET',
        ' (the outbox stayed drained: the generator is the limit)' if sustained else
        ' (the backlog grew: the bridge is the limit)'))
    lines.append('  outbox backlog        %10d events at the end, %d at most; drained %s after the generator stopped'
                 % (best['backlog_end'], best['backlog_max'], fmt(best['drain'], '%.1f s') if best['drain'] is not None
                    else 'NOT within 120 s'))
    lines.append('  per second (t, committed, in stream): %s' % ', '.join(
        '%.0f:%d/%d' % s for s in best['samples']))
    lines.append('  from a backlog        %10s events/s   (%d events piled up while the notifier was stopped, moved in %s '
                 'after its start)' % (fmt(catch_up['rate'], '%.0f'), catch_up['backlog'],
                                      fmt(catch_up['seconds'], '%.1f s') if catch_up['seconds'] else 'NOT 120 s'))
    lines.append('')
    lines.append('runtime %.0f s' % runtime)
    return '\n'.join(lines) + '\n'


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--seconds', type=float, default=float(os.environ.get('BENCH_SECONDS', 20)),
                        help='length of each phase (default 20, or BENCH_SECONDS)')
    parser.add_argument('--out', help='also write the report here')
    args = parser.parse_args()
    if args.seconds < 3:
        parser.error('--seconds must be at least 3')
    started = time.monotonic()
    with FeedDatabase('bench_notifier') as db:
        redis_server = RedisServer('bench-redis').start()
        notifier = Notifier('bench-notifier', db.name, redis_server).start()
        facts = machine_facts(db.name, redis_server)
        paced = []
        for rate in sorted(PACED):
            sys.stderr.write('[%s] paced %d events/s for %.0f s\n' % (time.strftime('%H:%M:%S'), rate, args.seconds))
            paced.append(paced_phase(db.name, redis_server, rate, args.seconds))
        sys.stderr.write('[%s] maximum rate for %.0f s\n' % (time.strftime('%H:%M:%S'), args.seconds))
        best = max_phase(db.name, redis_server, args.seconds)
        sys.stderr.write('[%s] backlog of %.0f s, then catch-up\n' % (time.strftime('%H:%M:%S'), args.seconds / 2))
        catch_up = catch_up_phase(db.name, redis_server, notifier, args.seconds / 2)
        if not notifier.alive():
            sys.stderr.write('the notifier exited during the benchmark:\n%s' % notifier.log_tail())
            return 1
        notifier.stop()
        redis_server.stop()
    text = report(facts, paced, best, catch_up, args.seconds, time.monotonic() - started)
    sys.stdout.write(text)
    if args.out:
        with open(args.out, 'w') as f:
            f.write(text)
    return 0


if __name__ == '__main__':
    sys.exit(main())
