#!/usr/bin/env python3
"""Invariant I2: positions follow commit order, and a cursor handed out is never passed.

Items are numbered after commit, in rounds; a scenario that needs an item numbered waits for it with
CALL pgfeed.flush() after the commit, so "commit order" here is the order of rounds.

Scenarios, each with sessions of its own and waits on observed conditions (pg_stat_activity lock
waits), never on sleeps:
  1. A inserts, B inserts, B commits, A commits: B's item < A's item, consecutive.
  2. A reader takes a cursor between the two commits: page(before => cursor + 1) is the same after
     A commits, count_since(cursor) counts exactly A's late item (per feed), A lands above it.
  3. mark_all_read while A is uncommitted ('all', a topic, 'following', up_to beyond the visible
     maximum) does not cover A's item once A commits; a second mark_all_read does.
  4. A transaction holding items and a mark open (SET CONSTRAINTS ALL IMMEDIATE included) makes no
     other inserting or marking commit wait on a lock; A lands above them when it commits, its own
     early mark applies, and mark_all_read(up_to => huge) run meanwhile stops below A.
  5. mark_all_read(up_to beyond the maximum) is clamped: items committed later are unread.
  6. Savepoints and rollbacks: a rolled-back insert (savepoint, nested savepoint, failed
     statement, whole transaction) produces no item; a delete or topic change rolled back to a
     savepoint leaves the item as it was; insert then delete (also after a topic change) in one
     transaction produces no item and consumes no position; insert then topic change produces one
     item with the final topic.
  7. 8 threads x 200 single-row transactions: the new positions are exactly base+1..base+1600, each
     thread's positions increase in its commit order, and a transaction that began after another's
     commit returned gets a higher position (real-time commit-order witness). Meanwhile a reader
     checks in REPEATABLE READ snapshots that the visible positions are a gap-free prefix
     (pgfeed.items and page()), that page(before => c + 1) never changes for earlier cursors c,
     and count_since(c) = max - c; and a marker calls mark_all_read repeatedly (READ COMMITTED and
     REPEATABLE READ): what it covers is always a prefix of positions.
"""
import bisect
import sys
import threading
import time

from _harness import Background, TestDatabase, TestFailure, run_main, wait_blocked, wait_until

LABEL = 'commit_order.py'
INSERTERS = 8
INSERTS_EACH = 200


def expect(condition, message):
    if not condition:
        raise TestFailure(message)


class CommitOrder:
    def __init__(self, db):
        self.db = db
        self.s = db.session('observer')
        self.monitor = db.session('monitor')
        self.a = db.session('A')
        self.b = db.session('B')
        self.checks = 0

    def expect(self, condition, message):
        self.checks += 1
        expect(condition, message)

    # -- observations through the API --------------------------------------------------------------

    def feed(self, user='observer', feed='all', before=None, unread_only=False):
        """Every item of the feed below `before`, newest first, walked page by page."""
        rows, cursor = [], before
        while True:
            page = self.s.all('SELECT position, activity_id, topic, is_read FROM pgfeed.page(%s, %s, 1000, %s, %s)',
                              (user, feed, cursor, unread_only))
            rows += [tuple(r) for r in page]
            if len(page) < 1000:
                return rows
            cursor = page[-1][0]

    def position_of(self, activity_id):
        for pos, aid, _, _ in self.feed():
            if aid == activity_id:
                return pos
        return None

    def last_visible(self):
        return self.s.value('SELECT coalesce(max(position), 0) FROM pgfeed.page(%s, %s, 1)', ('observer', 'all'))

    @staticmethod
    def insert(session, mp_id=1):
        return session.value('INSERT INTO app (mp_id) VALUES (%s) RETURNING id', (mp_id,))

    def committed_insert(self, mp_id=1):
        aid = self.insert(self.s, mp_id)
        self.s.flush()
        return aid

    def commit(self, session):
        """COMMIT, then wait until the numbering step has numbered it."""
        session.execute('COMMIT')
        session.flush()

    # -- scenarios ---------------------------------------------------------------------------------

    def scenario_later_commit_higher_position(self):
        a, b = self.a, self.b
        a.execute('BEGIN')
        ida = self.insert(a)
        b.execute('BEGIN')
        idb = self.insert(b)
        self.commit(b)
        self.commit(a)
        pa, pb = self.position_of(ida), self.position_of(idb)
        self.expect(pa is not None and pb is not None, '1: items of A (%s) and B (%s) are missing' % (pa, pb))
        self.expect(pb < pa, '1: B committed first but got position %d, A got %d' % (pb, pa))
        self.expect(pa == pb + 1, '1: A (%d) is not right above B (%d): a gap' % (pa, pb))

    def scenario_cursor_between_commits(self):
        a, b = self.a, self.b
        a.execute('BEGIN')
        ida = self.insert(a, 2)
        b.execute('BEGIN')
        idb = self.insert(b, 2)
        self.commit(b)
        first = self.feed('u2')
        self.expect(first and first[0][1] == idb, '2: B\'s item is not the newest after B commits: %s' % first[:3])
        cursor = first[0][0]
        below = {f: self.feed('u2', f, before=cursor + 1) for f in ('all', 'mp_id:2', 'mp_id:1')}
        for f in below:
            self.expect(self.s.value('SELECT pgfeed.count_since(%s, %s, %s)', ('u2', f, cursor)) == 0,
                        '2: count_since(%s, cursor) is not 0 before A commits' % f)
        self.commit(a)
        for f, rows in below.items():
            again = self.feed('u2', f, before=cursor + 1)
            self.expect(again == rows, '2: page(%s, before => cursor + 1) changed after a late commit: %s -> %s'
                        % (f, rows[:4], again[:4]))
        expected_since = {'all': 1, 'mp_id:2': 1, 'mp_id:1': 0}
        for f, n in expected_since.items():
            got = self.s.value('SELECT pgfeed.count_since(%s, %s, %s)', ('u2', f, cursor))
            self.expect(got == n, '2: count_since(u2, %s, cursor) = %s after A commits, expected %d' % (f, got, n))
        top = self.feed('u2')[0]
        self.expect(top[1] == ida and top[0] == cursor + 1,
                    '2: A\'s item should be at cursor + 1 = %d, the newest item is %s' % (cursor + 1, top))
        self.expect(self.s.value('SELECT pgfeed.unread_count(%s, %s)', ('u2', 'all')) == len(self.feed('u2')),
                    '2: unread_count of a user who read nothing is not the number of items')

    def scenario_mark_all_read_with_uncommitted_insert(self):
        a = self.a
        cases = [('u3a', 'all', None), ('u3b', 'mp_id:3', None), ('u3c', 'following', None),
                 ('u3d', 'all', 10**12), ('u3e', 'mp_id:3', 10**12)]
        for user, feed, up_to in cases:
            self.s.execute('SELECT pgfeed.follow(%s, %s)', (user, 'mp_id:3'))
            self.committed_insert(3)
            visible = self.feed(user, feed)
            a.execute('BEGIN')
            ida = self.insert(a, 3)
            marked = self.s.value('SELECT pgfeed.mark_all_read(%s, %s, %s)', (user, feed, up_to))
            self.expect(marked == len(visible), '3: mark_all_read(%s, %s, %s) marked %s, %d items are visible'
                        % (user, feed, up_to, marked, len(visible)))
            self.commit(a)
            what = 'mark_all_read(%s, %s, up_to => %s) during A\'s transaction' % (user, feed, up_to)
            self.expect(self.s.value('SELECT pgfeed.is_read(%s, %s)', (user, ida)) is False,
                        '3: %s covered A\'s item, committed afterwards' % what)
            self.expect(self.s.value('SELECT pgfeed.unread_count(%s, %s)', (user, feed)) == 1,
                        '3: after %s, unread_count is not 1' % what)
            unread = self.feed(user, feed, unread_only=True)
            self.expect([r[1] for r in unread] == [ida], '3: after %s, the unread items are %s' % (what, unread))
            again = self.s.value('SELECT pgfeed.mark_all_read(%s, %s, %s)', (user, feed, up_to))
            self.expect(again == 1 and self.s.value('SELECT pgfeed.unread_count(%s, %s)', (user, feed)) == 0,
                        '3: a second mark_all_read(%s, %s, %s) marked %s, left %s unread' % (
                            user, feed, up_to, again, self.s.value('SELECT pgfeed.unread_count(%s, %s)', (user, feed))))

    def scenario_open_transaction_blocks_no_commit(self):
        """A transaction that wrote items and holds them (SET CONSTRAINTS ALL IMMEDIATE numbered
        them, under a lock, until 0.4.0) makes no other inserting or marking commit wait; it is
        numbered when it commits, above them."""
        a = self.a
        before = self.last_visible()
        a.execute('BEGIN')
        ida = self.insert(a, 4)
        a.execute('SELECT pgfeed.mark_read(%s, ARRAY[%s]::bigint[])', ('u4', ida))
        a.execute('SET CONSTRAINTS ALL IMMEDIATE')
        others = [self.db.session('committer4_%d' % k) for k in range(4)]

        def write_and_commit(sess, k):
            sess.execute('BEGIN')
            aid = self.insert(sess, 4)
            sess.execute('SELECT pgfeed.mark_unread(%s, ARRAY[%s]::bigint[])', ('u4_%d' % k, aid))
            sess.execute('COMMIT')
            return aid

        commits = [Background(lambda sess=sess, k=k: write_and_commit(sess, k), 'commit %d' % k)
                   for k, sess in enumerate(others)]
        waited = wait_until(lambda: all(c.done() for c in commits) or
                            any(self.lock_wait_of_app('committer4_%d' % k) for k in range(len(others))),
                            '4: the other commits to finish or block')
        self.expect(waited is True, '4: a commit waited on a lock while A held its written items open')
        ids = [c.join('4: commit %d' % k) for k, c in enumerate(commits)]
        self.s.flush()
        positions = sorted(self.position_of(i) for i in ids)
        self.expect(positions == list(range(before + 1, before + 1 + len(ids))),
                    '4: the commits made while A was open got positions %s, expected %d..' % (positions, before + 1))
        self.expect(self.position_of(ida) is None, '4: A\'s uncommitted item is visible')
        marked = self.s.value('SELECT pgfeed.mark_all_read(%s, %s, %s)', ('u4m', 'all', 10**12))
        self.commit(a)
        pa = self.position_of(ida)
        self.expect(pa == before + len(ids) + 1, '4: A committed last but got position %s, expected %d'
                    % (pa, before + len(ids) + 1))
        self.expect(self.s.value('SELECT pgfeed.is_read(%s, %s)', ('u4', ida)) is True,
                    '4: A marked its own item read before it was numbered, and it is not read')
        self.expect(marked == before + len(ids), '4: mark_all_read(up_to => 10^12) during A\'s transaction marked '
                    '%s, %d items were visible' % (marked, before + len(ids)))
        self.expect(self.s.value('SELECT pgfeed.is_read(%s, %s)', ('u4m', ida)) is False,
                    '4: mark_all_read(up_to => 10^12) during A\'s transaction covered A\'s item')

    def lock_wait_of_app(self, application_name):
        row = self.monitor.one("SELECT wait_event_type FROM pg_stat_activity WHERE application_name = %s",
                               (application_name,))
        return 'blocked' if row and row[0] == 'Lock' else None

    def scenario_up_to_is_clamped(self):
        for feed, mp_id in (('all', 1), ('mp_id:5', 5)):
            user = 'u5_' + feed
            self.committed_insert(mp_id)
            top = self.last_visible()
            n = len(self.feed(user, feed))
            marked = self.s.value('SELECT pgfeed.mark_all_read(%s, %s, %s)', (user, feed, top + 100))
            self.expect(marked == n, '5: mark_all_read(%s, up_to => max + 100) marked %s of %d' % (feed, marked, n))
            late = [self.committed_insert(mp_id) for _ in range(3)]
            for aid in late:
                pos = self.position_of(aid)
                self.expect(pos <= top + 100, '5: test bug: position %d above up_to' % pos)
                self.expect(self.s.value('SELECT pgfeed.is_read(%s, %s)', (user, aid)) is False,
                            '5: item at %d, committed after mark_all_read(%s, up_to => %d), is read: up_to not clamped'
                            % (pos, feed, top + 100))
            self.expect(self.s.value('SELECT pgfeed.unread_count(%s, %s)', (user, feed)) == 3,
                        '5: unread_count after clamped mark_all_read(%s) is not 3' % feed)

    def scenario_savepoints_and_rollbacks(self):
        a = self.a
        s = self.s

        def only_new(ids_expected, what, topics=None):
            """Exactly these ids appeared, at the next positions, since `base`."""
            rows = self.feed(before=None)
            new = [r for r in rows if r[0] > base]
            self.expect([r[1] for r in reversed(new)] == ids_expected,
                        '6: %s: new items %s, expected ids %s' % (what, [(r[0], r[1]) for r in new], ids_expected))
            self.expect([r[0] for r in reversed(new)] == list(range(base + 1, base + 1 + len(ids_expected))),
                        '6: %s: new positions %s are not %d.. without gaps' % (what, [r[0] for r in new], base + 1))
            if topics:
                self.expect([r[2] for r in reversed(new)] == topics, '6: %s: topics %s, expected %s'
                            % (what, [r[2] for r in reversed(new)], topics))

        def gone(aid, what):
            self.expect(s.value('SELECT pgfeed.is_read(%s, %s)', ('u6', aid)) is None,
                        '6: %s: is_read of id %d is not NULL: an item exists' % (what, aid))

        base = self.last_visible()
        a.execute('BEGIN')
        x = self.insert(a)
        a.execute('SAVEPOINT s')
        y = self.insert(a)
        a.execute('ROLLBACK TO SAVEPOINT s')
        self.commit(a)
        only_new([x], 'insert rolled back to a savepoint')
        gone(y, 'insert rolled back to a savepoint')

        base = self.last_visible()
        a.execute('BEGIN')
        a.execute('SAVEPOINT s1')
        y1 = self.insert(a)
        a.execute('SAVEPOINT s2')
        y2 = self.insert(a)
        a.execute('RELEASE SAVEPOINT s2')
        a.execute('ROLLBACK TO SAVEPOINT s1')
        x = self.insert(a)
        self.commit(a)
        only_new([x], 'inserts in a released savepoint inside a rolled-back one')
        gone(y1, 'nested savepoint')
        gone(y2, 'nested savepoint')

        base = self.last_visible()
        a.execute('BEGIN')
        x = self.insert(a)
        a.execute('SAVEPOINT s')
        y = self.insert(a)
        try:
            a.execute('SELECT 1 / 0')
            raise TestFailure('6: division by zero did not fail')
        except TestFailure:
            raise
        except Exception:
            pass
        a.execute('ROLLBACK TO SAVEPOINT s')
        self.commit(a)
        only_new([x], 'insert before a failed statement, rolled back to a savepoint')
        gone(y, 'failed savepoint')

        base = self.last_visible()
        a.execute('BEGIN')
        y = self.insert(a)
        a.execute('ROLLBACK')
        x = self.committed_insert()
        only_new([x], 'rolled-back transaction, then a committed insert')
        gone(y, 'rolled-back transaction')

        base = self.last_visible()
        a.execute('BEGIN')
        x = self.insert(a)
        a.execute('SAVEPOINT s')
        a.execute('DELETE FROM app WHERE id = %s', (x,))
        a.execute('ROLLBACK TO SAVEPOINT s')
        self.commit(a)
        only_new([x], 'delete of a new row rolled back to a savepoint')

        # A committed item: a delete or a topic change rolled back to a savepoint leaves it alone.
        z = self.committed_insert(1)
        zpos = self.position_of(z)
        base = self.last_visible()
        a.execute('BEGIN')
        a.execute('SAVEPOINT s')
        a.execute('DELETE FROM app WHERE id = %s', (z,))
        a.execute('ROLLBACK TO SAVEPOINT s')
        a.execute('SAVEPOINT t')
        a.execute('UPDATE app SET mp_id = 2 WHERE id = %s', (z,))
        a.execute('ROLLBACK TO SAVEPOINT t')
        self.commit(a)
        only_new([], 'delete and topic change of a committed item rolled back')
        self.expect(self.position_of(z) == zpos, '6: item %d moved from %d to %s' % (z, zpos, self.position_of(z)))
        self.expect(s.value('SELECT topic FROM pgfeed.page(%s, %s, 1, %s)', ('u6', 'all', zpos + 1)) == 'mp_id:1',
                    '6: rolled-back topic change changed the topic')

        base = self.last_visible()
        a.execute('BEGIN')
        y = self.insert(a)
        a.execute('DELETE FROM app WHERE id = %s', (y,))
        self.commit(a)
        gone(y, 'insert then delete in one transaction')
        self.expect(s.value('SELECT pgfeed.count_since(%s, %s, %s)', ('u6', 'all', base)) == 0,
                    '6: count_since counts an item inserted and deleted in one transaction')
        x = self.committed_insert()
        only_new([x], 'insert then delete in one transaction, then a committed insert')

        base = self.last_visible()
        a.execute('BEGIN')
        y = self.insert(a, 1)
        a.execute('UPDATE app SET mp_id = 2 WHERE id = %s', (y,))
        a.execute('DELETE FROM app WHERE id = %s', (y,))
        x = self.insert(a, 3)
        a.execute('UPDATE app SET mp_id = 4 WHERE id = %s', (x,))
        self.commit(a)
        gone(y, 'insert, topic change, delete in one transaction')
        only_new([x], 'insert then topic change in one transaction', topics=['mp_id:4'])

    def scenario_concurrent_inserters(self, mixed, transactions_each):
        """mixed=False: single-row autocommit inserts. mixed=True: transactions of 1-3 rows, some
        rolled back, some with a rolled-back savepoint, some inserting and deleting a row."""
        base = self.last_visible()
        records = []  # (thread, index, committed activity ids in insert order, t_begin, t_end)
        lock = threading.Lock()
        done = threading.Event()
        errors = []

        def one_transaction(sess, k, i):
            topic = k % 4 + 1
            if not mixed:
                return [sess.value('INSERT INTO app (mp_id) VALUES (%s) RETURNING id', (topic,))]
            kind = (k * 7 + i) % 5
            sess.execute('BEGIN')
            ids = [sess.value('INSERT INTO app (mp_id) VALUES (%s) RETURNING id', (topic,))
                   for _ in range(1 + i % 3)]
            if kind == 1:
                sess.execute('ROLLBACK')
                return []
            if kind == 2:
                sess.execute('SAVEPOINT s')
                sess.value('INSERT INTO app (mp_id) VALUES (%s) RETURNING id', (topic,))
                sess.execute('ROLLBACK TO SAVEPOINT s')
            if kind == 3:
                gone = sess.value('INSERT INTO app (mp_id) VALUES (%s) RETURNING id', (topic,))
                sess.execute('DELETE FROM app WHERE id = %s', (gone,))
            sess.execute('COMMIT')
            return ids

        def inserter(k):
            sess = self.db.session('inserter%d' % k)
            try:
                for i in range(transactions_each):
                    t0 = time.monotonic()
                    ids = one_transaction(sess, k, i)
                    t1 = time.monotonic()
                    if ids:
                        with lock:
                            records.append((k, i, ids, t0, t1))
            except Exception as e:
                errors.append('inserter %d: %s: %s' % (k, type(e).__name__, e))
                sess.rollback_quietly()

        reader_stats = {'snapshots': 0, 'cursors': 0}

        def reader():
            sess = self.db.session('cursor-reader')
            cursors = []  # (cursor, rows strictly below cursor + 1 at the time)
            try:
                while not done.is_set() and not errors:
                    sess.execute('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY')
                    count, top, last = sess.one('SELECT count(*), coalesce(max(position), 0), '
                                                '(SELECT last_position FROM pgfeed.sequencer) FROM pgfeed.items')
                    if not (count == top == last):
                        raise TestFailure('7: in one snapshot pgfeed.items holds %d positions up to %d, '
                                          'sequencer says %d: not a gap-free prefix' % (count, top, last))
                    page = [tuple(r) for r in sess.all(
                        'SELECT position, activity_id FROM pgfeed.page(%s, %s, 60)', ('reader', 'all'))]
                    mine = [p for p, _ in page if p > base]
                    if mine and (mine[0] != top or mine != list(range(mine[0], mine[0] - len(mine), -1))):
                        raise TestFailure('7: page shows positions %s while the visible maximum is %d: a hole'
                                          % (mine[:12], top))
                    since = sess.value('SELECT pgfeed.count_since(%s, %s, %s)', ('reader', 'all', base))
                    if since != top - base:
                        raise TestFailure('7: count_since(base %d) = %s with visible maximum %d' % (base, since, top))
                    for c, rows in cursors[-5:]:
                        again = [tuple(r) for r in sess.all(
                            'SELECT position, activity_id FROM pgfeed.page(%s, %s, 20, %s)', ('reader', 'all', c + 1))]
                        if again != rows:
                            raise TestFailure('7: page(before => %d) changed from %s to %s' % (c + 1, rows, again))
                    cursors.append((top, [r for r in page if r[0] <= top][:20]))
                    sess.execute('COMMIT')
                    reader_stats['snapshots'] += 1
                reader_stats['cursors'] = len(cursors)
            except Exception as e:
                errors.append('reader: %s' % e)
                sess.rollback_quietly()

        marker_stats = {'calls': 0, 'marked': 0}

        def marker():
            """mark_all_read('all') while items commit: what it covers is always a prefix of positions,
            in REPEATABLE READ exactly the positions up to the snapshot's last position."""
            sess = self.db.session('marker')
            try:
                threshold = 0
                while not done.is_set() and not errors:
                    rr = marker_stats['calls'] % 2 == 1
                    bound = None
                    if rr:
                        sess.execute('BEGIN ISOLATION LEVEL REPEATABLE READ')
                        bound = sess.value('SELECT last_position FROM pgfeed.sequencer')
                    marker_stats['marked'] += sess.value('SELECT pgfeed.mark_all_read(%s, %s)', ('marker', 'all'))
                    if rr:
                        sess.execute('COMMIT')
                    marker_stats['calls'] += 1
                    sess.execute('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY')
                    rows, before = [], None
                    while True:
                        page = sess.all('SELECT position, is_read FROM pgfeed.page(%s, %s, 1000, %s)',
                                        ('marker', 'all', before))
                        rows += page
                        if len(page) < 1000:
                            break
                        before = page[-1][0]
                    sess.execute('COMMIT')
                    max_read = max((p for p, r in rows if r), default=0)
                    min_unread = min((p for p, r in rows if not r), default=None)
                    if min_unread is not None and min_unread < max_read:
                        raise TestFailure('7: after mark_all_read, %d is unread below %d, read'
                                          % (min_unread, max_read))
                    if max_read < threshold:
                        raise TestFailure('7: mark_all_read covered up to %d, later only up to %d'
                                          % (threshold, max_read))
                    threshold = max_read
                    if rr and (max_read < bound or (min_unread is not None and min_unread <= bound)):
                        raise TestFailure('7: mark_all_read in a snapshot with last position %d: read up to %d, '
                                          'lowest unread %s' % (bound, max_read, min_unread))
            except Exception as e:
                errors.append('marker: %s' % e)
                sess.rollback_quietly()

        self.s.execute('SELECT pgfeed.mark_all_read(%s)', ('marker',))
        # The reader's density checks count on no deletes of committed rows meanwhile.
        threads = [threading.Thread(target=inserter, args=(k,), daemon=True) for k in range(INSERTERS)]
        side = [threading.Thread(target=reader, daemon=True), threading.Thread(target=marker, daemon=True)]
        started = time.monotonic()
        for t in threads + side:
            t.start()
        for t in threads:
            t.join(90)
        done.set()
        for t in side:
            t.join(30)
        elapsed = time.monotonic() - started
        self.s.flush()
        if errors:
            raise TestFailure('; '.join(errors))
        label = '7 (%s)' % ('mixed transactions' if mixed else 'single-row transactions')
        n = sum(len(r[2]) for r in records)
        positions = {aid: pos for pos, aid, _, _ in self.feed() if pos > base}
        self.expect(sorted(positions.values()) == list(range(base + 1, base + n + 1)),
                    '%s: the %d committed rows do not have positions %d..%d exactly (got %d items, min %s, max %s)'
                    % (label, n, base + 1, base + n, len(positions), min(positions.values(), default=None),
                       max(positions.values(), default=None)))
        spans = {}  # (thread, index) -> (lowest, highest) position of the transaction's items
        for k, i, ids, _, _ in records:
            mine = [positions.get(aid) for aid in ids]
            self.expect(None not in mine, '%s: committed rows %s have no item' % (label, ids))
            self.expect(mine == list(range(mine[0], mine[0] + len(mine))),
                        '%s: one transaction\'s rows got positions %s, not a block in insert order' % (label, mine))
            spans[(k, i)] = (mine[0], mine[-1])
        for k in range(INSERTERS):
            mine = [spans[(kk, i)] for kk, i, _, _, _ in sorted(records, key=lambda r: r[1]) if kk == k]
            self.expect(all(a[1] < b[0] for a, b in zip(mine, mine[1:])),
                        '%s: inserter %d committed in order but got positions %s' % (label, k, mine[:12]))
        # Real-time witness: a transaction that began after another's commit returned is above it.
        by_end = sorted(records, key=lambda r: r[4])
        ends = [r[4] for r in by_end]
        prefix_max, m = [], 0
        for r in by_end:
            m = max(m, spans[(r[0], r[1])][1])
            prefix_max.append(m)
        violations = []
        for k, i, ids, t0, t1 in records:
            j = bisect.bisect_left(ends, t0)  # transactions whose commit returned before this one began
            if j and prefix_max[j - 1] > spans[(k, i)][0]:
                violations.append(spans[(k, i)])
        self.expect(not violations, '%s: %d transactions got positions below one that committed before they began: %s'
                    % (label, len(violations), violations[:5]))
        unread = self.s.value('SELECT pgfeed.unread_count(%s)', ('marker',))
        flagged = sum(1 for r in self.feed('marker') if not r[3])
        self.expect(unread == flagged, '7: marker: unread_count %s, page shows %d unread' % (unread, flagged))
        return ('%s: %d items from %d transactions in %.1f s, %d reader snapshots, %d mark_all_read calls'
                % (label, n, len(records), elapsed, reader_stats['snapshots'], marker_stats['calls']))


SCHEMA = """
CREATE TABLE app (id bigserial PRIMARY KEY, mp_id int, created_at timestamptz NOT NULL DEFAULT now());
SELECT pgfeed.attach('app', 'mp_id');
"""


def main():
    def body(holder):
        with TestDatabase('order') as db:
            holder['db'] = db
            db.session('schema').execute(SCHEMA)
            t = CommitOrder(db)
            t.scenario_later_commit_higher_position()
            t.scenario_cursor_between_commits()
            t.scenario_mark_all_read_with_uncommitted_insert()
            t.scenario_open_transaction_blocks_no_commit()
            t.scenario_up_to_is_clamped()
            t.scenario_savepoints_and_rollbacks()
            single = t.scenario_concurrent_inserters(mixed=False, transactions_each=INSERTS_EACH)
            mixed = t.scenario_concurrent_inserters(mixed=True, transactions_each=INSERTS_EACH // 2)
            return '7 scenarios, %d assertions; %s; %s' % (t.checks, single, mixed)

    return run_main(LABEL, body, watchdog_seconds=150)


if __name__ == '__main__':
    sys.exit(main())
