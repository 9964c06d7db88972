#!/usr/bin/env python3
"""Invariant I3: concurrent changes of one user's read state keep the counts exact.

Several sessions change the read state of the SAME user at once (mark_read, mark_unread,
mark_all_read on 'all' / a topic / 'following' with and without up_to, follow, unfollow) while
others insert rows and, in some rounds, delete rows or change their topics. Afterwards, for that
user and a bystander, every feed's unread_count must equal a fresh recomputation from is_read()
over all items (membership from the app table and, for 'following', from the topics the test's
own follow/unfollow calls left followed), page()'s is_read
flags must equal is_read(), page(unread_only) must list exactly the unread ones, and no count may
be negative. While the sessions run, a monitor checks in REPEATABLE READ snapshots that
unread_count is never negative, never above the feed's size, and equals the unread rows page()
shows in the same snapshot.

Rounds: READ COMMITTED, where any error fails the test (a deadlock included); REPEATABLE READ /
SERIALIZABLE, where the only allowed error is SQLSTATE 40001, retried. Each runs without and with
concurrent deletes and topic changes.

Two deterministic scenarios pin down interleavings the random rounds hit only by chance:
  A. lock order: a mark (mark_read; mark_all_read of a topic with unread items below the horizon;
     mark_all_read('all', up_to) with read items above up_to) waits for item Y while a delete of X
     locks X's item row and wants the user's reader row. Must not deadlock, whatever the order.
  A2. a transaction that deletes Y, then X (the user has marks near Y: the first delete locks the
     user's reader row), while a mark of X (mark_read, mark_unread, mark_all_read) starts between
     the two deletes. Must not deadlock.
  B. a REPEATABLE READ delete whose snapshot predates a concurrent mark_read / mark_unread of the
     item (the first marks of the user, or the user's first marks after mark_all_read); the
     unread counts must stay exact (40001 retried is fine).

Usage: concurrent_marks.py [SEED]   (or PGFEED_SEED=...)
"""
import random
import sys
import threading
import time

from _harness import (DEADLOCK_DETECTED, SERIALIZATION_FAILURE, Background, TestDatabase, TestFailure,
                      lock_wait_of, run_main, seed_from, sqlstate, wait_until)

LABEL = 'concurrent_marks.py'
TOPICS = ['mp_id:1', 'mp_id:2', 'mp_id:3', 'mp_id:4']
FEEDS = ['all', 'following'] + TOPICS
OPS_PER_THREAD = 200

SCHEMA = """
CREATE TABLE app (id bigserial PRIMARY KEY, mp_id int, created_at timestamptz NOT NULL DEFAULT now());
SELECT pgfeed.attach('app', 'mp_id');
INSERT INTO app (mp_id) SELECT 1 + g % 4 FROM generate_series(1, 300) g;
"""


class ConcurrentMarks:
    def __init__(self, db, seed):
        self.db = db
        self.seed = seed
        self.s = db.session('verifier')
        self.monitor = db.session('monitor')
        self.failures = []
        self.summaries = []
        self.users = []  # every user whose state is verified at the end
        self.followed = {}  # user -> topics it follows, as the test's own follow/unfollow calls left them

    # -- verification ------------------------------------------------------------------------------

    def feed_rows(self, s, user, feed, unread_only=False):
        rows, before = [], None
        while True:
            page = s.all('SELECT position, activity_id, topic, is_read FROM pgfeed.page(%s, %s, 1000, %s, %s)',
                         (user, feed, before, unread_only))
            rows += [tuple(r) for r in page]
            if len(page) < 1000:
                return rows
            before = page[-1][0]

    def verify_user(self, user, where):
        """At rest: every count of the user equals a recomputation from is_read() over all items."""
        s = self.s
        s.flush()  # deletes and inserts committed so far reach the feed
        s.execute('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY')
        try:
            flags = dict(s.all('SELECT id, pgfeed.is_read(%s, id) FROM app', (user,)))
            topic_of = dict(s.all("SELECT id, 'mp_id:' || mp_id FROM app"))
            followed = self.followed.get(user, set())
            if None in flags.values():
                raise TestFailure('%s: is_read(%s, id) is NULL for live rows %s'
                                  % (where, user, [i for i, f in flags.items() if f is None][:10]))
            for feed in FEEDS:
                if feed == 'all':
                    members = set(flags)
                elif feed == 'following':
                    members = {i for i, t in topic_of.items() if t in followed}
                else:
                    members = {i for i, t in topic_of.items() if t == feed}
                rows = self.feed_rows(s, user, feed)
                what = '%s: user %s feed %s' % (where, user, feed)
                if sorted(r[1] for r in rows) != sorted(members):
                    raise TestFailure('%s: page lists %d items, the table has %d (missing %s, extra %s)' % (
                        what, len(rows), len(members), sorted(members - {r[1] for r in rows})[:8],
                        sorted({r[1] for r in rows} - members)[:8]))
                wrong = [(r[1], r[3], flags[r[1]]) for r in rows if r[3] != flags[r[1]]]
                if wrong:
                    raise TestFailure('%s: page is_read differs from is_read() for %d items: %s'
                                      % (what, len(wrong), wrong[:8]))
                unread = sum(1 for i in members if not flags[i])
                count = s.value('SELECT pgfeed.unread_count(%s, %s)', (user, feed))
                if count != unread:
                    raise TestFailure('%s: unread_count = %s, recomputed from is_read over all %d items: %d'
                                      % (what, count, len(members), unread))
                unread_rows = self.feed_rows(s, user, feed, unread_only=True)
                if unread_rows != [r for r in rows if not r[3]]:
                    raise TestFailure('%s: page(unread_only) lists %d items, %d are unread'
                                      % (what, len(unread_rows), unread))
                since = s.value('SELECT pgfeed.count_since(%s, %s, 0)', (user, feed))
                if since != len(members):
                    raise TestFailure('%s: count_since(0) = %s, the feed has %d items' % (what, since, len(members)))
        finally:
            s.rollback_quietly()

    def snapshot_check(self, s, users):
        """In one snapshot: counts non-negative, at most the feed's size, equal to page's unread rows."""
        s.execute('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY')
        try:
            for user in users:
                for feed in FEEDS:
                    count = s.value('SELECT pgfeed.unread_count(%s, %s)', (user, feed))
                    rows = self.feed_rows(s, user, feed)
                    unread = sum(1 for r in rows if not r[3])
                    if count < 0 or count > len(rows) or count != unread:
                        raise TestFailure('snapshot: unread_count(%s, %s) = %s, page shows %d unread of %d items'
                                          % (user, feed, count, unread, len(rows)))
        finally:
            s.rollback_quietly()

    def check(self, name, fn):
        try:
            summary = fn()
            if summary:
                self.summaries.append(summary)
        except TestFailure as e:
            self.failures.append('%s: %s' % (name, e))
        except Exception as e:
            self.failures.append('%s: unexpected %s: %s' % (name, type(e).__name__, e))

    # -- deterministic scenarios -------------------------------------------------------------------

    def new_rows(self, n, mp_id=1):
        ids = [r[0] for r in self.s.all('INSERT INTO app (mp_id) SELECT %s FROM generate_series(1, %s) RETURNING id',
                                        (mp_id, n))]
        self.s.flush()
        return ids

    def position_of(self, user, activity_id):
        return self.s.value('SELECT position FROM pgfeed.page(%s, %s, 1000) WHERE activity_id = %s',
                            (user, 'all', activity_id))

    def scenario_lock_order(self):
        """A mark that holds the user's reader row and waits for an item row, against a delete that
        holds that item row and waits for the reader row. Stalled on purpose: another transaction
        holds item Y (an update of created_at locks Y's item row and nothing else) while the mark
        needs Y, then X; the delete of X starts meanwhile."""
        cases = [
            # (user, setup, the mark)
            ('lock_mark_read', lambda u, y, x, z: [('mark_read', (u, [z]))],
             lambda u, y, x, z: ('SELECT pgfeed.mark_read(%s, %s)', (u, [y, x]))),
            ('lock_all_topic', lambda u, y, x, z: [('mark_all_read', (u,)), ('mark_unread', (u, [y, x]))],
             lambda u, y, x, z: ('SELECT pgfeed.mark_all_read(%s, %s)', (u, 'mp_id:1'))),
            ('lock_all_up_to', lambda u, y, x, z: [('mark_read', (u, [y, x, z]))],
             lambda u, y, x, z: ('SELECT pgfeed.mark_all_read(%s, %s, %s)', (u, 'all', self.position_of(u, x)))),
        ]
        errors = []
        for user, setup, mark_call in cases:
            self.users.append(user)
            y, x, z = self.new_rows(3)
            for fn, args in setup(user, y, x, z):
                self.s.execute('SELECT pgfeed.%s(%s)' % (fn, ', '.join(['%s'] * len(args))), args)
            sql, args = mark_call(user, y, x, z)
            stall, marker, deleter = (self.db.session(user + '-stall'), self.db.session(user + '-mark'),
                                      self.db.session(user + '-delete'))
            stall.execute('BEGIN')
            stall.execute("UPDATE app SET created_at = created_at - interval '1 day' WHERE id = %s", (y,))
            mark = Background(lambda: marker.value(sql, args), 'mark')
            wait_until(lambda: mark.done() or lock_wait_of(self.monitor, marker.pid), sql + ' to finish or block')
            delete = Background(lambda: deleter.execute('DELETE FROM app WHERE id = %s', (x,)), 'delete X')
            wait_until(lambda: delete.done() or lock_wait_of(self.monitor, deleter.pid),
                       'the DELETE of X to finish or block')
            stall.execute('COMMIT')
            for what, bg in (('%s %% %s' % (sql, args), mark), ('DELETE of X', delete)):
                try:
                    bg.join(what, timeout=30)
                except Exception as e:
                    errors.append('%s: %s failed with SQLSTATE %s: %s' % (
                        user, what, sqlstate(e), str(e).strip().splitlines()[0]))
            for sess in (stall, marker, deleter):
                sess.close()
            try:
                self.verify_user(user, 'A (%s)' % user)
            except TestFailure as e:
                errors.append(str(e))
        if errors:
            raise TestFailure('\n    '.join(errors))
        return None

    def scenario_deleting_transaction(self):
        """A transaction deletes Y, then X: deleting Y locks the user's reader row (the user has
        marks in Y's chunk) until commit. A mark of X that starts in between waits for that reader
        row; the delete of X must not then wait for the mark (deadlock). Y lies below or above X."""
        marks = [('mark_read', lambda u, x: ('SELECT pgfeed.mark_read(%s, %s)', (u, [x]))),
                 ('mark_unread', lambda u, x: ('SELECT pgfeed.mark_unread(%s, %s)', (u, [x]))),
                 ('all_topic', lambda u, x: ('SELECT pgfeed.mark_all_read(%s, %s)', (u, 'mp_id:1'))),
                 ('all', lambda u, x: ('SELECT pgfeed.mark_all_read(%s)', (u,)))]
        errors = []
        for name, mark_call in marks:
            for y_side in ('below', 'above'):
                user = 'deltx_%s_%s' % (name, y_side)
                self.users.append(user)
                low, x, high = self.new_rows(3)
                y, z = (low, high) if y_side == 'below' else (high, low)
                self.s.execute('SELECT pgfeed.mark_read(%s, %s)', (user, [z] + ([x] if name == 'mark_unread' else [])))
                sql, args = mark_call(user, x)
                marker, deleter = self.db.session(user + '-mark'), self.db.session(user + '-delete')
                deleter.execute('BEGIN')
                deleter.execute('DELETE FROM app WHERE id = %s', (y,))
                mark = Background(lambda: marker.value(sql, args), 'mark')
                wait_until(lambda: mark.done() or lock_wait_of(self.monitor, marker.pid),
                           sql + ' to finish or block')
                second = Background(lambda: deleter.execute('DELETE FROM app WHERE id = %s', (x,)), 'delete X')
                failed = []
                try:
                    second.join('the second DELETE of the transaction', timeout=30)
                    deleter.execute('COMMIT')
                except Exception as e:
                    deleter.rollback_quietly()
                    failed.append('the second DELETE (of X) failed with SQLSTATE %s: %s' % (
                        sqlstate(e), str(e).strip().splitlines()[0]))
                try:
                    mark.join(sql, timeout=30)
                except Exception as e:
                    failed.append('%s failed with SQLSTATE %s: %s' % (
                        sql % tuple(repr(a) for a in args), sqlstate(e), str(e).strip().splitlines()[0]))
                errors += ['%s (Y %s X): %s' % (user, y_side, f) for f in failed]
                for sess in (marker, deleter):
                    sess.close()
                try:
                    self.verify_user(user, 'A2 (%s)' % user)
                except TestFailure as e:
                    errors.append(str(e))
        if errors:
            raise TestFailure('\n    '.join(errors))
        return None

    def scenario_stale_snapshot_delete(self):
        """A REPEATABLE READ delete (or topic change) whose snapshot predates the mark of its item."""
        cases = [('rr_first_mark', 'delete', False), ('rr_first_mark_retopic', 'retopic', False),
                 ('rr_unread_after_all', 'delete', True), ('rr_unread_after_all_retopic', 'retopic', True)]
        old = self.db.session('B-old-snapshot')
        marker = self.db.session('B-mark')
        errors = []
        for user, change, after_mark_all in cases:
            self.users.append(user)
            x, w = self.new_rows(2, 2)
            if after_mark_all:
                marker.execute('SELECT pgfeed.mark_read(%s, %s)', (user, [w]))
                marker.execute('SELECT pgfeed.mark_all_read(%s)', (user,))
            sql = ('DELETE FROM app WHERE id = %s' if change == 'delete' else 'UPDATE app SET mp_id = 3 WHERE id = %s')
            attempts = 0

            def body(tx):
                nonlocal attempts
                attempts += 1
                tx.value('SELECT 1')  # the snapshot
                if attempts == 1:
                    fn = 'mark_unread' if after_mark_all else 'mark_read'
                    marker.execute('SELECT pgfeed.%s(%%s, %%s)' % fn, (user, [x]))
                tx.execute(sql, (x,))

            old.transaction(body, 'REPEATABLE READ', retry_codes=(SERIALIZATION_FAILURE,))
            try:
                self.verify_user(user, 'B (%s, %s in a snapshot older than the mark%s)' % (
                    user, change, ', after mark_all_read' if after_mark_all else ''))
            except TestFailure as e:
                errors.append(str(e))
        if errors:
            raise TestFailure('\n    '.join(errors))
        return None

    # -- random rounds -----------------------------------------------------------------------------

    def round(self, name, isolations, with_deletes, seed):
        user, bystander = 'u_' + name, 'v_' + name
        self.users += [user, bystander]
        stop = threading.Event()
        errors = []
        stats = {'ops': 0, 'retries': 0, 'snapshots': 0}
        lock = threading.Lock()
        id_range = [self.s.value('SELECT min(id) FROM app'), self.s.value('SELECT max(id) FROM app')]

        def random_ids(rng, n):
            return [rng.randint(id_range[0], id_range[1]) for _ in range(n)]

        def op_mark_read(s, rng, to_read=True):
            fn = 'mark_read' if to_read else 'mark_unread'
            n = s.value('SELECT pgfeed.%s(%%s, %%s)' % fn, (user, random_ids(rng, rng.randint(1, 6))))
            if n < 0:
                raise TestFailure('%s returned %s' % (fn, n))

        def op_mark_all(s, rng):
            feed = rng.choice(FEEDS + ['all', 'all'])
            up_to = None if rng.random() < 0.5 else rng.randint(0, s.value(
                'SELECT coalesce(max(position), 0) + 3 FROM pgfeed.page(%s, %s, 1)', (user, 'all')))
            n = s.value('SELECT pgfeed.mark_all_read(%s, %s, %s)', (user, feed, up_to))
            if n < 0:
                raise TestFailure('mark_all_read returned %s' % n)

        def op_insert(s, rng):
            top = s.value('INSERT INTO app (mp_id) SELECT 1 + (random() * 3)::int FROM generate_series(1, %s) '
                          'RETURNING id', (rng.randint(1, 3),))
            with lock:
                id_range[1] = max(id_range[1], top)

        followed = self.followed.setdefault(user, set())

        def op_follow(s, rng):
            # Only this session follows and unfollows for the user: it knows what the user follows.
            topic, follow = rng.choice(TOPICS), rng.random() < 0.6
            got = s.value('SELECT pgfeed.%s(%%s, %%s)' % ('follow' if follow else 'unfollow'), (user, topic))
            if got != (follow != (topic in followed)):
                raise TestFailure('%s(%s, %s) returned %s while the user %s it' % (
                    'follow' if follow else 'unfollow', user, topic, got,
                    'follows' if topic in followed else 'does not follow'))
            return lambda: followed.add(topic) if follow else followed.discard(topic)

        def op_change(s, rng):
            victims = random_ids(rng, rng.choice([1, 1, 2, 3]))  # several rows: one statement, many tombstones
            if rng.random() < 0.5:
                s.execute('DELETE FROM app WHERE id = ANY(%s)', (victims,))
            else:
                s.execute('UPDATE app SET mp_id = %s WHERE id = ANY(%s)', (rng.randint(1, 4), victims))

        def op_bystander(s, rng):
            kind = rng.randrange(3)
            if kind == 0:
                s.execute('SELECT pgfeed.mark_read(%s, %s)', (bystander, random_ids(rng, 3)))
            elif kind == 1:
                s.execute('SELECT pgfeed.mark_unread(%s, %s)', (bystander, random_ids(rng, 3)))
            else:
                s.execute('SELECT pgfeed.mark_all_read(%s, %s)', (bystander, rng.choice(FEEDS)))

        workers = [('read', op_mark_read), ('unread', lambda s, r: op_mark_read(s, r, False)),
                   ('all', op_mark_all), ('all2', op_mark_all), ('insert', op_insert), ('follow', op_follow),
                   ('bystander', op_bystander)]
        if with_deletes:
            workers.append(('change', op_change))

        def work(index, wname, op):
            s = self.db.session('%s-%s' % (name, wname))
            rng = random.Random(seed * 100 + index)
            step = 0
            try:
                for step in range(OPS_PER_THREAD):
                    if stop.is_set():
                        return
                    isolation = rng.choice(isolations)
                    if isolation == 'READ COMMITTED':
                        committed = op(s, rng)  # one autocommit statement
                    else:
                        def on_retry(_e):
                            with lock:
                                stats['retries'] += 1
                        committed = s.transaction(lambda tx: op(tx, rng), isolation,
                                                  retry_codes=(SERIALIZATION_FAILURE,), on_retry=on_retry)
                    if committed:
                        committed()
                    with lock:
                        stats['ops'] += 1
            except Exception as e:
                code = sqlstate(e)
                kind = {DEADLOCK_DETECTED: 'DEADLOCK',
                        SERIALIZATION_FAILURE: 'serialization failure'}.get(code, 'error')
                with lock:
                    errors.append('%s %s at step %d: %s (SQLSTATE %s): %s' % (
                        wname, kind, step, type(e).__name__, code, str(e).strip().splitlines()[0] if str(e) else ''))
                stop.set()

        def monitor():
            s = self.db.session('%s-monitor' % name)
            try:
                while not stop.is_set():
                    self.snapshot_check(s, [user, bystander])
                    stats['snapshots'] += 1
            except Exception as e:
                with lock:
                    errors.append('monitor: %s' % e)
                stop.set()

        threads = [threading.Thread(target=work, args=(i, w, op), daemon=True) for i, (w, op) in enumerate(workers)]
        mon = threading.Thread(target=monitor, daemon=True)
        started = time.monotonic()
        for t in threads:
            t.start()
        mon.start()
        for t in threads:
            t.join(60)
        stop.set()
        mon.join(30)
        elapsed = time.monotonic() - started
        problems = list(errors)
        for u in (user, bystander):
            try:
                self.verify_user(u, 'after round %s' % name)
            except TestFailure as e:
                problems.append(str(e))
        if problems:
            raise TestFailure('\n    '.join(problems))
        return '%s: %d ops, %d retries, %d snapshots in %.1f s' % (name, stats['ops'], stats['retries'],
                                                                   stats['snapshots'], elapsed)

    def verify_all(self):
        errors = []
        for user in self.users:
            try:
                self.verify_user(user, 'final')
            except TestFailure as e:
                errors.append(str(e))
        if errors:
            raise TestFailure('%d users wrong:\n    %s' % (len(errors), '\n    '.join(errors)))
        return None

    def final_resets(self):
        """Read everything, then unread everything: both extremes must count exactly."""
        for user in self.users:
            self.s.execute('SELECT pgfeed.mark_all_read(%s)', (user,))
            for feed in FEEDS:
                n = self.s.value('SELECT pgfeed.unread_count(%s, %s)', (user, feed))
                if n != 0:
                    raise TestFailure('user %s: unread_count(%s) = %s right after mark_all_read' % (user, feed, n))
            ids = [r[0] for r in self.s.all('SELECT id FROM app')]
            self.s.execute('SELECT pgfeed.mark_unread(%s, %s)', (user, ids))
            if self.s.value('SELECT pgfeed.unread_count(%s)', (user,)) != len(ids):
                raise TestFailure('user %s: unread_count = %s after marking all %d items unread' % (
                    user, self.s.value('SELECT pgfeed.unread_count(%s)', (user,)), len(ids)))
            self.verify_user(user, 'after marking everything unread')
        return None


def main():
    seed = seed_from(sys.argv, default=1)
    print('%s: seed %d (rerun: python3 test/concurrency/concurrent_marks.py %d)' % (LABEL, seed, seed), flush=True)

    def body(holder):
        with TestDatabase('marks') as db:
            holder['db'] = db
            db.session('schema').execute(SCHEMA)
            t = ConcurrentMarks(db, seed)
            t.check('scenario A (lock order of marks against a delete)', t.scenario_lock_order)
            t.check('scenario A2 (a transaction deleting two items against a mark)', t.scenario_deleting_transaction)
            t.check('scenario B (REPEATABLE READ delete with an older snapshot)', t.scenario_stale_snapshot_delete)
            rc, rr = ['READ COMMITTED'], ['REPEATABLE READ', 'SERIALIZABLE']
            t.check('round rc', lambda: t.round('rc', rc, False, seed))
            t.check('round rc_changes', lambda: t.round('rc_changes', rc, True, seed + 1))
            t.check('round rr', lambda: t.round('rr', rr, False, seed + 2))
            t.check('round rr_changes', lambda: t.round('rr_changes', rr, True, seed + 3))
            t.check('final verification of every user', t.verify_all)
            t.check('resets', t.final_resets)
            if t.failures:
                raise TestFailure('seed %d: %d of 9 checks failed: %s\n  %s' % (
                    seed, len(t.failures), ', '.join(f.split(':')[0] for f in t.failures), '\n  '.join(t.failures)))
            return 'seed %d: %s' % (seed, '; '.join(t.summaries))

    return run_main(LABEL, body, watchdog_seconds=150)


if __name__ == '__main__':
    sys.exit(main())
