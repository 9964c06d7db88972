#!/usr/bin/env python3
"""Invariant I4: every committed event reaches the Redis stream once, in commit order; rolled-back
transactions produce nothing; across kill -9 of the notifier, Redis and PostgreSQL restarts, and a
failover between two notifier instances.

Workload: SESSIONS threads, each with its own connection, run random transactions against an
attached `activities` table: insert 1-5 rows, delete a row, mark_read / mark_unread of a few
activities or mark_all_read ('all' or a topic) for one of a few users; about 20% roll back. Every
transaction also writes one row into txn_log (for mark transactions after the pgfeed call, so that
behind the user's row lock the seq order of a user's rows is their commit order). txn_log is the
truth about what committed, also when a COMMIT's outcome is unknown because the server restarted
under it.

Once the workload has stopped and the stream has caught up (as many events as the committed
transactions call for, nothing left in pgfeed.events that is not in the stream, and no growth for a
while), the stream is checked in order:
  (a) every committed insert and delete appears exactly once as an activity event, nothing of a
      transaction that rolled back; no event_id appears twice; every outbox event is in the stream;
  (b) insert positions are strictly increasing and dense in stream order;
  (c) per user, the read events are exactly the committed mark transactions that changed
      something, in txn_log seq order, each with the op, feed, count and ids of its transaction;
  (d) an activity's insert event comes before any read event naming it and before its delete;
  (e) real-time commit order: when transaction A's COMMIT returned before B began, all of A's
      events come before all of B's.

Scenarios (each its own database, redis-server and notifiers): plain, notifier_kill (SIGKILL at
random moments, restarted), redis_restart (SIGTERM, then SIGKILL; AOF on), postgres_restart
(pg_ctl restart -m fast, twice), failover (two instances; the one holding the bridge lock is
SIGKILLed, twice).

Usage: exactly_once.py [SEED [SCENARIO...]]   (or PGFEED_SEED=N; PGFEED_SEED=random)
Runs under test/run-notifier-tests.sh, which provides the PostgreSQL cluster (PGHOST).
"""
import collections
import random
import signal
import sys
import threading
import time
import traceback

from _servers import (RUN, STREAM, FeedDatabase, Notifier, RedisServer, TestFailure, bridge_holder, choose_scenarios,
                      connect, outbox_event_ids, psycopg2, query, read_stream, redis, restart_postgres, wait_until)
from _harness import start_watchdog

LABEL = 'exactly_once'
SESSIONS = 6
USERS = ['u1', 'u2', 'u3']
TOPIC_VALUES = [1, 2, 3, 4, None]  # None: an item in the 'all' feed only
ROLLBACK_SHARE = 0.2
WORKLOAD_SECONDS = 8.0
CATCH_UP_SECONDS = 30.0
QUIET_SECONDS = 1.0  # no growth for this long (several bridge ticks) once everything is there
MISSING_ID = 10**12  # mark_* skip unknown ids
MAX_REPORTED = 12

TXN_LOG = """
CREATE TABLE txn_log (
    txn          text PRIMARY KEY,      -- '<session>.<n>'
    seq          bigserial,
    op           text NOT NULL,         -- insert | delete | read | unread | read_all
    user_key     text,
    feed         text,
    activity_ids bigint[] NOT NULL,     -- inserted, deleted, or passed to mark_read / mark_unread
    changed      bigint                 -- what the mark function returned
);
"""


class WorkloadAnomaly(Exception):
    """Something the workload's own bookkeeping rules out happened."""


class Txn:
    """One transaction as the workload attempted it; outcome is committed, rolled_back, unknown
    (the connection broke around it: txn_log decides) or failed (an SQL error)."""

    __slots__ = ('key', 'op', 'ids', 'began', 'commit_returned', 'outcome')

    def __init__(self, key, op):
        self.key = key
        self.op = op
        self.ids = []
        self.began = time.monotonic()
        self.commit_returned = None
        self.outcome = None


def connection_lost(conn, error):
    # 57P01..57P03: terminated by a shutdown, crash or startup; psycopg2 marks a broken link closed.
    return bool(conn.closed) or (getattr(error, 'pgcode', None) or '').startswith('57P') or \
        isinstance(error, psycopg2.InterfaceError)


class Workload:
    def __init__(self, dbname, seed):
        self.dbname = dbname
        self.seed = seed
        self.stop_event = threading.Event()
        self.lock = threading.Lock()
        self.live = []          # ids known committed and not picked for deletion
        self.txns = []
        self.errors = []        # unexpected SQL errors: (txn, sqlstate, message)
        self.reconnects = 0
        self.threads = []

    def start(self):
        for index in range(SESSIONS):
            t = threading.Thread(target=self._session, args=(index,), name='workload-%d' % index, daemon=True)
            t.start()
            self.threads.append(t)

    def stop(self):
        self.stop_event.set()
        for t in self.threads:
            t.join(60)
            if t.is_alive():
                raise TestFailure('workload thread %s did not stop within 60 s' % t.name)

    def _connect(self, name):
        def attempt():
            try:
                return connect(self.dbname, name)
            except psycopg2.OperationalError:
                return None  # the server is restarting
        return wait_until(attempt, 'the workload to reconnect to PostgreSQL', timeout=60, interval=0.05)

    def _committed(self, key):
        """Whether transaction `key` committed, read from txn_log (retried while the server restarts)."""
        def attempt():
            try:
                return [bool(query(self.dbname, 'SELECT 1 FROM txn_log WHERE txn = %s', (key,)))]
            except psycopg2.OperationalError:
                return None
        return wait_until(attempt, 'txn_log to tell the outcome of %s' % key, timeout=60, interval=0.05)[0]

    def _session(self, index):
        rng = random.Random(self.seed * 1000 + index)
        name = 'workload-%d' % index
        conn = None
        n = 0
        try:
            conn = self._connect(name)
            while not self.stop_event.is_set():
                n += 1
                txn = self._one_transaction(conn, rng, '%s.%d' % (index, n))
                if txn.outcome == 'unknown':
                    conn.close()
                    conn = self._connect(name)
                    with self.lock:
                        self.reconnects += 1
                    self._settle(txn, self._committed(txn.key))
                else:
                    self._settle(txn, txn.outcome == 'committed')
                    if conn.closed:  # lost while waiting for the numbering of a committed transaction
                        conn = self._connect(name)
                with self.lock:
                    self.txns.append(txn)
                time.sleep(rng.uniform(0, 0.004))  # pacing: keeps the event rate modest
        except Exception:
            with self.lock:
                self.errors.append((name, None, 'workload thread died: %s' % traceback.format_exc()))
        finally:
            if conn is not None:
                conn.close()

    def _settle(self, txn, committed):
        """Keeps `live` in step: new rows once committed and numbered, picked rows back when not deleted."""
        with self.lock:
            if txn.op == 'insert' and committed and txn.commit_returned is not None:  # numbered: may be marked
                self.live.extend(txn.ids)
            elif txn.op == 'delete' and not committed:
                self.live.extend(txn.ids)

    def _pick(self, rng, k):
        with self.lock:
            ids = rng.sample(self.live, min(k, len(self.live)))
        if rng.random() < 0.1:
            ids.append(MISSING_ID)
        return ids

    def _take_live(self, rng):
        with self.lock:
            if not self.live:
                return None
            return self.live.pop(rng.randrange(len(self.live)))

    def _one_transaction(self, conn, rng, key):
        r = rng.random()
        op = ('insert' if r < 0.35 else 'delete' if r < 0.47 else 'read' if r < 0.72
              else 'unread' if r < 0.92 else 'read_all')
        picked = self._take_live(rng) if op == 'delete' else None
        if op == 'delete' and picked is None:
            op = 'insert'  # nothing to delete yet
        txn = Txn(key, op)
        user, feed, changed = rng.choice(USERS), None, None
        cur = conn.cursor()
        try:
            cur.execute('BEGIN')
            if op == 'insert':
                rows = [(rng.choice(TOPIC_VALUES), rng.choice(['vote', 'speech', 'question'])) for _ in range(rng.randint(1, 5))]
                cur.execute('INSERT INTO activities (mp_id, kind) VALUES %s RETURNING id'
                            % ', '.join(['(%s, %s)'] * len(rows)), [v for row in rows for v in row])
                txn.ids = [row[0] for row in cur.fetchall()]
                user = None
            elif op == 'delete':
                txn.ids = [picked]
                cur.execute('DELETE FROM activities WHERE id = %s RETURNING id', (picked,))
                if cur.fetchall() != [(picked,)]:
                    raise WorkloadAnomaly('committed activity %d, never deleted, was not there to delete' % picked)
                user = None
            elif op in ('read', 'unread'):
                txn.ids = self._pick(rng, rng.randint(1, 4))
                cur.execute('SELECT pgfeed.mark_%s(%%s, %%s::bigint[])' % op, (user, txn.ids))
                changed = cur.fetchone()[0]
            else:
                feed = rng.choice(['all', 'mp_id:%d' % rng.choice([v for v in TOPIC_VALUES if v])])
                cur.execute('SELECT pgfeed.mark_all_read(%s, %s)', (user, feed))
                changed = cur.fetchone()[0]
            cur.execute('INSERT INTO txn_log (txn, op, user_key, feed, activity_ids, changed) '
                        'VALUES (%s, %s, %s, %s, %s::bigint[], %s)', (key, op, user, feed, txn.ids, changed))
            if rng.random() < ROLLBACK_SHARE:
                cur.execute('ROLLBACK')
                txn.outcome = 'rolled_back'
            else:
                cur.execute('COMMIT')
                txn.outcome = 'committed'
                if op in ('insert', 'delete'):
                    # Activity events are written when the numbering step takes the change: wait for
                    # it, so that "committed" means "its events exist" as it does for marks.
                    try:
                        cur.execute('CALL pgfeed.flush()')
                    except psycopg2.Error as e:
                        if not connection_lost(conn, e):
                            raise
                        return txn  # committed, but when its events came is unknown
                txn.commit_returned = time.monotonic()
        except (psycopg2.Error, WorkloadAnomaly) as e:
            if isinstance(e, psycopg2.Error) and connection_lost(conn, e):
                txn.outcome = 'unknown'
            else:
                txn.outcome = 'failed'
                with self.lock:
                    self.errors.append((key, getattr(e, 'pgcode', None), str(e).strip()))
                try:
                    cur.execute('ROLLBACK')
                except psycopg2.Error:
                    pass
        return txn


# -- the scenario's servers -------------------------------------------------------------------------------

class Scenario:
    """A database, a redis-server, notifier instances and a workload of the scenario's own."""

    def __init__(self, name, seed):
        self.name = name
        self.seed = seed
        self.rng = random.Random(seed)
        self.started = time.monotonic()
        self.faults = []
        self.db = FeedDatabase('eo_%s' % name, TXN_LOG)
        self.db.__enter__()
        try:
            self.redis = RedisServer('%s-redis' % name).start()
        except BaseException:
            self.db.drop()
            raise
        self.client = self.redis.client()
        self.notifiers = {}
        self.workload = Workload(self.db.name, seed)

    def note(self, what):
        self.faults.append('%.1fs %s' % (time.monotonic() - self.started, what))

    def notifier(self, name):
        n = self.notifiers.get(name)
        if n is None:
            n = self.notifiers[name] = Notifier('%s-%s' % (self.name, name), self.db.name, self.redis)
        return n.start()

    def stream_length(self):
        try:
            return self.client.xlen(STREAM)
        except redis.RedisError:
            return None  # restarting

    def wait_stream_growth(self, by, what):
        """Waits until the stream has grown by `by` entries: a notifier is moving events."""
        def answered():
            length = self.stream_length()
            return None if length is None else [length]
        base = wait_until(answered, 'redis to answer', timeout=20, interval=0.02)[0]
        wait_until(lambda: (self.stream_length() or 0) >= base + by, 'the stream to grow by %d %s' % (by, what),
                   timeout=20, interval=0.01)

    def pause(self, low, high):
        """A random moment for the next fault: scheduling, not waiting for a condition."""
        time.sleep(self.rng.uniform(low, high))

    def close(self):
        self.workload.stop()  # when the scenario failed midway, the workload still runs
        for n in self.notifiers.values():
            n.stop()
        self.redis.stop()
        self.db.drop()


# -- checks --------------------------------------------------------------------------------------------------

class Expected:
    """What the committed transactions (txn_log) call for."""

    def __init__(self, dbname):
        rows = query(dbname, 'SELECT txn, seq, op, user_key, feed, activity_ids, changed FROM txn_log ORDER BY seq')
        self.committed = {r[0]: r for r in rows}
        self.inserts, self.deletes = {}, {}
        self.reads = collections.defaultdict(list)  # user -> txn_log rows in seq order
        for txn, _seq, op, user, _feed, ids, changed in rows:
            if op == 'insert':
                self.inserts.update((aid, txn) for aid in ids)
            elif op == 'delete':
                self.deletes.update((aid, txn) for aid in ids)
            elif changed:
                self.reads[user].append(self.committed[txn])
        self.count = len(self.inserts) + len(self.deletes) + sum(len(v) for v in self.reads.values())


def wait_caught_up(scenario, expected):
    """Waits until the stream holds at least the expected number of events, has not grown for
    QUIET_SECONDS, and the outbox holds nothing the stream lacks. Returns a note when it did not
    happen by the deadline (the checks then say what is missing)."""
    deadline = time.monotonic() + CATCH_UP_SECONDS
    last_length, last_change = None, time.monotonic()
    while time.monotonic() < deadline:
        length = scenario.stream_length()
        if length != last_length:
            last_length, last_change = length, time.monotonic()
        elif length is not None and length >= expected.count and time.monotonic() - last_change >= QUIET_SECONDS:
            in_stream = {e.fields.get('event_id') for e in read_stream(scenario.client)}
            if all(str(i) in in_stream for i in outbox_event_ids(scenario.db.name)):
                return None
        if not any(n.alive() for n in scenario.notifiers.values()):
            return 'no notifier is running any more'
        time.sleep(0.05)
    return 'the stream did not catch up within %.0f s (%s of %d events)' % (CATCH_UP_SECONDS, last_length, expected.count)


class Violations:
    def __init__(self):
        self.items = []

    def add(self, message):
        self.items.append(message)

    def raise_if_any(self, context):
        if self.items:
            lines = self.items[:MAX_REPORTED]
            if len(self.items) > MAX_REPORTED:
                lines.append('... and %d more' % (len(self.items) - MAX_REPORTED))
            raise TestFailure('\n  '.join(lines + [context]))


def check_stream(events, expected, txns, outbox_left):
    """Checks (a) to (e) over the stream in order; returns the Violations."""
    v = Violations()
    attempted = {t.key: t for t in txns}
    rolled_back_inserts = {aid: t.key for t in txns if t.op == 'insert' and t.key not in expected.committed
                           for aid in t.ids}
    seen_event_ids = {}
    inserted_at, deleted_at = {}, {}
    last_position = None
    read_cursor = collections.Counter()
    spans = {}  # txn -> [first stream index, last stream index]

    def belongs(txn, ev):
        span = spans.setdefault(txn, [ev.index, ev.index])
        span[1] = ev.index

    for ev in events:
        f, d = ev.fields, ev.data
        if not isinstance(d, dict) or f.get('kind') not in ('activity', 'read') or not f.get('event_id', '').isdigit() \
                or not f.get('at', '').isdigit():
            v.add('malformed %s' % ev)
            continue
        if f['event_id'] in seen_event_ids:
            v.add('(a) event_id %s twice: %s and %s' % (f['event_id'], seen_event_ids[f['event_id']], ev))
            continue
        seen_event_ids[f['event_id']] = ev
        if f['kind'] == 'activity':
            aid, op = d.get('activity_id'), d.get('op')
            if f.get('topic') != d.get('topic'):
                v.add('topic field %r differs from the data\'s %r in %s' % (f.get('topic'), d.get('topic'), ev))
            if op == 'insert':
                txn = expected.inserts.get(aid)
                if aid in inserted_at:
                    v.add('(a) activity %s inserted twice in the stream: %s and %s' % (aid, inserted_at[aid], ev))
                    continue
                if txn is None:
                    v.add('(a) insert of activity %s, which %s: %s' % (
                        aid, 'transaction %s inserted and rolled back' % rolled_back_inserts[aid]
                        if aid in rolled_back_inserts else 'no committed transaction inserted', ev))
                    continue
                position = d.get('position')
                if last_position is not None and position != last_position + 1:
                    v.add('(b) insert position %s follows position %s in the stream (%s): %s' % (
                        position, last_position, 'a gap' if position > last_position else 'out of order', ev))
                last_position = position
                inserted_at[aid] = ev
                belongs(txn, ev)
            elif op == 'delete':
                txn = expected.deletes.get(aid)
                if aid in deleted_at:
                    v.add('(a) activity %s deleted twice in the stream: %s and %s' % (aid, deleted_at[aid], ev))
                    continue
                if txn is None:
                    v.add('(a) delete of activity %s, which no committed transaction deleted: %s' % (aid, ev))
                    continue
                if aid not in inserted_at:
                    v.add('(d) delete of activity %s before its insert: %s' % (aid, ev))
                deleted_at[aid] = ev
                belongs(txn, ev)
            else:
                v.add('(a) activity event with op %r; the workload only inserts and deletes: %s' % (op, ev))
        else:
            user = d.get('user')
            if f.get('user') != user:
                v.add('user field %r differs from the data\'s %r in %s' % (f.get('user'), user, ev))
            for aid in d.get('activity_ids') or []:
                if aid not in inserted_at:
                    v.add('(d) read event names activity %s before its insert event: %s' % (aid, ev))
            queue = expected.reads.get(user, [])
            k = read_cursor[user]
            if k >= len(queue):
                v.add('(c) read event of %s beyond the %d committed mark transactions that changed something: %s'
                      % (user, len(queue), ev))
                continue
            mismatch = match_read(d, *queue[k][2:])
            # A later transaction's event here means the ones in between are missing (or late).
            later = next((j for j in range(k + 1, min(k + 50, len(queue))) if not match_read(d, *queue[j][2:])), None) \
                if mismatch else None
            if later is not None:
                for txn, seq, op, _user, feed, ids, changed in queue[k:later]:
                    v.add('(c) committed %s of %s (transaction %s, seq %d, %s %s, changed %s) is missing where it '
                          'belongs: before %s' % (op, user, txn, seq, feed or '', ids, changed, ev))
                k = later
            elif mismatch:
                txn, seq, op, _user, feed, ids, changed = queue[k]
                v.add('(c) read event #%d of %s should be transaction %s (seq %d: %s %s %s, changed %s) but %s: %s'
                      % (k + 1, user, txn, seq, op, feed or '', ids, changed, mismatch, ev))
            read_cursor[user] = k + 1
            belongs(queue[k][0], ev)

    for aid, txn in sorted(expected.inserts.items(), key=lambda kv: expected.committed[kv[1]][1]):
        if aid not in inserted_at:
            v.add('(a) committed insert of activity %s (transaction %s) is not in the stream' % (aid, txn))
    for aid, txn in sorted(expected.deletes.items()):
        if aid not in deleted_at:
            v.add('(a) committed delete of activity %s (transaction %s) is not in the stream' % (aid, txn))
    for user, queue in sorted(expected.reads.items()):
        for txn, seq, op, _user, feed, ids, changed in queue[read_cursor[user]:]:
            v.add('(c) committed %s of %s (transaction %s, seq %d, %s %s, changed %s) is not in the stream'
                  % (op, user, txn, seq, feed or '', ids, changed))
    if outbox_left:
        v.add('(a) %d events of pgfeed.events are not in the stream, event_ids %s'
              % (len(outbox_left), outbox_left[:10]))
    check_real_time_order(spans, attempted, events, v)
    return v


def match_read(data, op, _user, feed, ids, changed):
    """Why the read event `data` is not the mark transaction described, or None."""
    if data.get('op') != op:
        return 'its op is %r' % data.get('op')
    if op == 'read_all':
        if data.get('feed') != feed:
            return 'its feed is %r' % data.get('feed')
        if 'changed' in data and data['changed'] != changed:
            return 'it changed %r' % data['changed']
        return None
    named = data.get('activity_ids') or []
    if len(named) != changed or not set(named) <= set(ids):
        return 'it names activities %s' % named
    if len(data.get('positions') or []) != len(named):
        return 'it has positions %s' % data.get('positions')
    return None


def check_real_time_order(spans, attempted, events, v):
    """(e) A transaction that began after another's COMMIT returned has all its events after all of
    the other's. One sweep: transactions by begin time against those committed before it."""
    finished = sorted((attempted[t].commit_returned, t) for t in spans
                      if t in attempted and attempted[t].commit_returned is not None)
    began = sorted((attempted[t].began, t) for t in spans if t in attempted)
    latest_end, latest_txn, i = -1, None, 0
    for begin, txn in began:
        while i < len(finished) and finished[i][0] < begin:
            end_txn = finished[i][1]
            if spans[end_txn][1] > latest_end:
                latest_end, latest_txn = spans[end_txn][1], end_txn
            i += 1
        if latest_txn is not None and spans[txn][0] < latest_end:
            v.add('(e) transaction %s began %.1f ms after transaction %s\'s COMMIT returned, yet its event %s '
                  'comes before %s' % (txn, 1000 * (begin - attempted[latest_txn].commit_returned), latest_txn,
                                       events[spans[txn][0]], events[latest_end]))


def finish(scenario, summary_extra=''):
    """Stops the workload, waits for the stream to catch up, and checks it."""
    workload = scenario.workload
    workload.stop()
    if workload.errors:
        key, code, message = workload.errors[0]
        raise TestFailure('the workload met %d unexpected errors; first, in transaction %s: %s %s'
                          % (len(workload.errors), key, code, message))
    expected = Expected(scenario.db.name)
    if len(expected.committed) < 100:
        raise TestFailure('only %d transactions committed: the workload did not run' % len(expected.committed))
    not_caught_up = wait_caught_up(scenario, expected)
    events = read_stream(scenario.client)
    in_stream = {e.fields.get('event_id') for e in events}
    outbox_left = [i for i in outbox_event_ids(scenario.db.name) if str(i) not in in_stream]
    violations = check_stream(events, expected, workload.txns, outbox_left)
    outcomes = collections.Counter(t.outcome for t in workload.txns)
    unknown_committed = sum(1 for t in workload.txns if t.outcome == 'unknown' and t.key in expected.committed)
    context = ('seed %d; %d events in the stream, %d expected; transactions: %s; faults: %s%s'
               % (scenario.seed, len(events), expected.count, dict(outcomes), '; '.join(scenario.faults) or 'none',
                  '; ' + not_caught_up if not_caught_up else ''))
    if not_caught_up and not violations.items:
        violations.add(not_caught_up)
    position = scenario.client.hgetall(STREAM + ':bridge')
    if set(position) != {'since', 'upto', 'after'}:
        violations.add('the bridge position %s:bridge is %r, not the fields since, upto and after' % (STREAM, position))
    for n in scenario.notifiers.values():
        if n.starts and not n.alive():
            violations.add('%s exited by itself with status %s:\n%s' % (n, n.exit_status(), n.log_tail()))
    violations.raise_if_any(context)
    return ('%d events; %d transactions committed (%d of %d with unknown outcome), %d rolled back; '
            'faults: %s%s' % (len(events), len(expected.committed), unknown_committed, outcomes['unknown'],
                              outcomes['rolled_back'], '; '.join(scenario.faults) or 'none', summary_extra))


# -- scenarios -------------------------------------------------------------------------------------------------

def scenario_plain(s):
    s.notifier('a')
    s.workload.start()
    s.wait_stream_growth(100, 'with the notifier running')
    time.sleep(WORKLOAD_SECONDS)  # the workload's length
    summary = finish(s)
    n = s.notifiers['a']
    n.stop()
    if n.exit_status() != 0:
        raise TestFailure('%s did not exit with 0 on SIGTERM (status %s):\n%s' % (n, n.exit_status(), n.log_tail()))
    return summary


def scenario_notifier_kill(s):
    n = s.notifier('a')
    s.workload.start()
    for kill in range(4):
        if kill != 2:  # the third kill hits a notifier that has just started, mid-recovery
            s.wait_stream_growth(20, 'after the notifier (re)started')
            s.pause(0.2, 1.5)
        n.kill()
        s.note('SIGKILL notifier')
        s.pause(0, 0.3)
        n.start()
    s.wait_stream_growth(20, 'after the last restart')
    s.pause(0.5, 1.5)
    return finish(s)


def scenario_redis_restart(s):
    s.notifier('a')
    s.workload.start()
    for sig in (signal.SIGTERM, signal.SIGKILL):
        s.wait_stream_growth(50, 'before the redis restart')
        s.pause(0.5, 2.0)
        downtime = s.rng.uniform(0.1, 0.8)
        s.redis.restart(sig, downtime)
        s.note('redis %s, down %.1f s' % (signal.Signals(sig).name, downtime))
    s.wait_stream_growth(50, 'after the redis restarts')
    s.pause(0.5, 1.5)
    return finish(s)


def scenario_postgres_restart(s):
    s.notifier('a')
    s.workload.start()
    for _ in range(2):
        s.wait_stream_growth(50, 'before the PostgreSQL restart')
        s.pause(0.5, 2.0)
        t0 = time.monotonic()
        restart_postgres('fast')
        s.note('pg_ctl restart -m fast (%.1f s)' % (time.monotonic() - t0))
    s.wait_stream_growth(50, 'after the PostgreSQL restarts')
    s.pause(0.5, 1.5)
    return finish(s, '; %d workload reconnects' % s.workload.reconnects)


def scenario_failover(s):
    for name in ('a', 'b'):
        s.notifier(name)
    holder = wait_until(lambda: bridge_holder(s.db.name), 'a notifier to take the bridge lock', timeout=20,
                        interval=0.05)
    if holder not in {n.name for n in s.notifiers.values()}:
        raise TestFailure('the bridge lock is held by %r, not by a notifier instance' % holder)
    s.workload.start()
    takeovers = []
    for _ in range(2):
        s.wait_stream_growth(50, 'before the failover')
        s.pause(0.5, 2.0)
        holder = bridge_holder(s.db.name)
        active = next(n for n in s.notifiers.values() if n.name == holder)
        standby = next(n for n in s.notifiers.values() if n is not active)
        active.kill()
        killed_at = time.monotonic()
        s.note('SIGKILL active %s' % active.name)
        wait_until(lambda: bridge_holder(s.db.name) == standby.name, '%s to take the bridge lock' % standby.name,
                   timeout=15, interval=0.02)
        s.wait_stream_growth(20, 'after %s took over' % standby.name)
        takeovers.append(time.monotonic() - killed_at)
        active.start()  # back as the standby
    s.pause(0.5, 1.5)
    return finish(s, '; takeover to first events moved: %s s' % ', '.join('%.2f' % t for t in takeovers))


SCENARIOS = [('plain', scenario_plain), ('notifier_kill', scenario_notifier_kill),
             ('redis_restart', scenario_redis_restart), ('postgres_restart', scenario_postgres_restart),
             ('failover', scenario_failover)]


def main():
    seed, chosen = choose_scenarios(LABEL, SCENARIOS, sys.argv)
    scenarios = {}

    def cleanup():
        RUN.failed = True
        for s in scenarios.values():
            s.db.drop()
        RUN.finish()
    start_watchdog(60 + 60 * len(chosen), LABEL, cleanup=cleanup)
    passed = failed = 0
    for index, (name, run) in enumerate(SCENARIOS):
        if name not in chosen:
            continue
        started = time.monotonic()
        scenario = None
        try:
            scenario = scenarios[name] = Scenario(name, seed + index)
            summary = run(scenario)
            print('%s %s: OK (%.1f s) %s' % (LABEL, name, time.monotonic() - started, summary), flush=True)
            passed += 1
        except Exception as e:
            failed += 1
            RUN.failed = True
            if not isinstance(e, TestFailure):
                traceback.print_exc()
            lines = str(e).splitlines() or [type(e).__name__]
            print('%s %s: FAIL (%.1f s) %s' % (LABEL, name, time.monotonic() - started, '\n'.join(lines)), flush=True)
            if scenario is not None:
                for n in scenario.notifiers.values():
                    print('--- last lines of %s (%s)\n%s' % (n, n.log_path, n.log_tail(15)), end='')
        finally:
            if scenario is not None:
                try:
                    scenario.close()
                except Exception as e:  # the next scenario may still run
                    failed += 1 if not RUN.failed else 0
                    RUN.failed = True
                    print('%s %s: cleanup failed: %s' % (LABEL, name, str(e).strip()), flush=True)
    print('%s: %d passed, %d failed' % (LABEL, passed, failed), flush=True)
    return 0 if failed == 0 and passed > 0 else 1


if __name__ == '__main__':
    sys.exit(main())
