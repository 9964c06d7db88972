#!/usr/bin/env python3
"""Invariant I1: pgfeed's read state and feeds agree with a plain-SQL reference model.

BULK_ITEMS rows inserted in one statement make several 1024-position read chunks, and each user's
read state starts out shaped at their edges (set_up: single marks at k*1024, runs ending or starting
there, a dense chunk, a horizon inside a chunk). Then random operations on the attached table `app`
(inserts, some in bulk, deletes, topic and id updates, savepoints, insert-then-delete in one
transaction, changes undone by ROLLBACK TO or a PL/pgSQL exception block after SET CONSTRAINTS ALL
IMMEDIATE) and on read state (mark_read, mark_unread, marks placed at chunk edges k*1024-1, k*1024,
k*1024+1 in runs, whole, dense and sparse chunks, mark_all_read on 'all' / a topic / 'following'
with and without up_to, at chunk edges too, follow, unfollow) run against pgfeed, and in the SAME
transaction against a reference kept in ordinary tables. Where pgfeed numbers items after commit
(pgfeed.flush exists), every committed write is followed by CALL pgfeed.flush().

  ref_pub(pub_id, activity_id, topic, created_at, position, deleted)
      one row per publication of a row: an insert, or a change of its topic or id, publishes it
      again; a trigger on `app` adds them. pgfeed numbers items after commit, in rounds that net a
      row's changes out: the reference takes its positions, and its deletions, from pgfeed's own
      numbering (a trigger on pgfeed.items, in the round's transaction), so that every snapshot sees
      both numbered alike. What the reference decides on its own is the read state: which items are
      read for whom, what each mark changes, counts and pages. That the rows of `app` are exactly the
      live items, with their topics, is checked at rest; positions' order is commit_order.py's.
  ref_state(user_key, pub_id, is_read)   the latest action of the user on the publication
  ref_follows(user_key, topic)

Every mark function's result (items newly marked), follow's and unfollow's are compared with the
reference's as the operation runs; mark_all_read's coverage is min(up_to, ref_seq.n) read in the
transaction's snapshot. When sessions run concurrently, mark operations run under REPEATABLE READ
or SERIALIZABLE, so that the reference sees exactly the snapshot pgfeed saw, and follow/unfollow
take an advisory lock on (user, topic) first; writes to `app` run at any isolation level (row locks
order them). Serialization failures and deadlocks are retried, both sides rolling back together,
and counted in the summary (deadlocks are I3's business: concurrent_marks.py fails on them).

A check compares in one snapshot, in the database (a difference is fetched to be shown): full
walks with before => in pages of 1000 of every user's 'all' and one more feed (every feed now and
then), read and unread-only, rows (position, activity_id, source, topic, created_at, is_read) and
all; a full walk of one feed in pages of 1, 2, 3, 7 or 20 (cycling), both ways; walks of a few pages
of 1 to 3 from right around every chunk edge; unread_count and count_since at several cursors of
every feed; is_read of a sample of activity ids, of every id ever used now and then.

Phase 1 runs one session and checks after every operation: fully reproducible from the seed.
Phase 2 runs two sessions concurrently while a third checks continuously in REPEATABLE READ
snapshots, then checks once more at rest.

Usage: differential.py [SEED]   (or PGFEED_SEED=...; DIFF_OPS=N sets the number of operations, default
DEFAULT_OPS: about a minute)
"""
import os
import random
import sys
import threading
import time

from _harness import (DEADLOCK_DETECTED, SERIALIZATION_FAILURE, TestDatabase, TestFailure, run_main,
                      seed_from, sqlstate)

LABEL = 'differential.py'
USERS = ['alice', 'bob', 'carol']
TOPIC_VALUES = [1, 2, 3, 4]
FOLLOWABLE = ['mp_id:1', 'mp_id:2', 'mp_id:3', 'mp_id:4', 'mp_id:9']  # mp_id:9 never gets items
FEEDS = ['all', 'following'] + FOLLOWABLE
MISSING_ID = 999999999
# Enough items for several 1024-position read chunks, inserted in one statement before the
# operations; MAX_LIVE caps the live rows (positions grow past it as rows are published again).
BULK_ITEMS = 2200
MAX_LIVE = 2600
CHUNK = 1024
# Every check walks every feed in pages of 1000 and one feed in pages of one of these (cycling),
# both with and without unread_only; walks from chunk edges take a few small pages.
WALK_SIZES = [1, 2, 3, 7, 20]
EDGE_WALK_PAGES = 4
# About a minute on two busy cores; DIFF_OPS=N runs longer.
DEFAULT_OPS = 900

SCHEMA = r"""
CREATE TABLE app (
    id         bigint PRIMARY KEY,
    mp_id      int,
    created_at timestamptz NOT NULL DEFAULT now(),
    body       text
);
CREATE SEQUENCE app_ids;
SELECT pgfeed.attach('app', 'mp_id', '{body}');

CREATE TABLE ref_seq (n bigint NOT NULL);
INSERT INTO ref_seq VALUES (0);
CREATE TABLE ref_pub (
    pub_id      bigserial PRIMARY KEY,
    activity_id bigint NOT NULL,
    topic       text,
    created_at  timestamptz,
    position    bigint UNIQUE,
    deleted     bool NOT NULL DEFAULT false
);
CREATE INDEX ON ref_pub (activity_id) WHERE NOT deleted;
CREATE TABLE ref_state (
    user_key text,
    pub_id   bigint,
    is_read  bool NOT NULL,
    PRIMARY KEY (user_key, pub_id)
);
CREATE TABLE ref_follows (user_key text, topic text, PRIMARY KEY (user_key, topic));

-- A row's insert publishes it; a change of its id or topic publishes it again.
CREATE FUNCTION ref_capture() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.id = NEW.id AND OLD.mp_id IS NOT DISTINCT FROM NEW.mp_id THEN
        RETURN NULL;
    END IF;
    INSERT INTO ref_pub (activity_id, topic, created_at) VALUES (NEW.id, 'mp_id:' || NEW.mp_id, NEW.created_at);
    RETURN NULL;
END $$;
CREATE TRIGGER ref_capture AFTER INSERT OR UPDATE ON app FOR EACH ROW EXECUTE FUNCTION ref_capture();

-- pgfeed's round numbered an item: the row's latest publication takes its position (earlier ones
-- it never numbered are void); a tombstone deletes the publication at that position. It runs in
-- the numbering worker's session, hence the qualified names.
CREATE FUNCTION ref_numbered() RETURNS trigger LANGUAGE plpgsql SET search_path = public, pg_catalog AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        UPDATE public.ref_pub SET position = NEW.position, deleted = false
         WHERE pub_id = (SELECT max(pub_id) FROM public.ref_pub
                          WHERE activity_id = NEW.activity_id AND position IS NULL);
        UPDATE public.ref_pub SET deleted = true WHERE activity_id = NEW.activity_id AND position IS NULL;
        UPDATE public.ref_seq SET n = greatest(n, NEW.position);
    ELSIF NEW.deleted AND NOT OLD.deleted THEN
        UPDATE public.ref_pub SET deleted = true WHERE position = NEW.position;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER ref_numbered AFTER INSERT OR UPDATE OF deleted ON pgfeed.items
    FOR EACH ROW EXECUTE FUNCTION ref_numbered();

-- The live publications of a feed.
CREATE FUNCTION ref_feed(u text, f text) RETURNS SETOF ref_pub LANGUAGE sql STABLE AS $$
    SELECT p.* FROM ref_pub p
     WHERE NOT p.deleted AND p.position IS NOT NULL
       AND (f = 'all' OR p.topic = f
            OR (f = 'following' AND p.topic IN (SELECT r.topic FROM ref_follows r WHERE r.user_key = u)))
$$;

-- Records the user's latest action on the publications; returns how many changed state.
CREATE FUNCTION ref_set(u text, pubs bigint[], val bool) RETURNS bigint LANGUAGE sql AS $$
    WITH t AS (SELECT DISTINCT x AS pub_id FROM unnest(pubs) x),
    prev AS (SELECT t.pub_id, coalesce(s.is_read, false) AS was
               FROM t LEFT JOIN ref_state s ON s.user_key = u AND s.pub_id = t.pub_id),
    up AS (INSERT INTO ref_state (user_key, pub_id, is_read) SELECT u, t.pub_id, val FROM t
           ON CONFLICT (user_key, pub_id) DO UPDATE SET is_read = EXCLUDED.is_read RETURNING 1)
    SELECT count(*) FILTER (WHERE was <> val) FROM prev
$$;

CREATE FUNCTION ref_mark(u text, ids bigint[], val bool) RETURNS bigint LANGUAGE sql AS $$
    SELECT ref_set(u, ARRAY(SELECT pub_id FROM ref_pub
                             WHERE activity_id = ANY(ids) AND NOT deleted AND position IS NOT NULL), val)
$$;

-- mark_all_read covers the feed up to min(up_to, the last position visible to the transaction).
CREATE FUNCTION ref_mark_all(u text, f text, up_to bigint) RETURNS bigint LANGUAGE sql AS $$
    SELECT ref_set(u, ARRAY(SELECT pub_id FROM ref_feed(u, f)
                             WHERE position <= least(up_to, (SELECT n FROM ref_seq))), true)
$$;

-- The reference's rows of a feed below `below` (NULL: all), newest first and numbered, the first
-- `lim` of them (NULL: all).
CREATE FUNCTION ref_rows(u text, f text, unread_only bool, below bigint DEFAULT NULL, lim bigint DEFAULT NULL)
RETURNS TABLE (n bigint, pos bigint, activity_id bigint, source text, topic text, created_at timestamptz,
               is_read bool) LANGUAGE sql STABLE AS $$
    SELECT row_number() OVER (ORDER BY p.position DESC), p.position, p.activity_id, 'app', p.topic, p.created_at,
           p.is_read
      FROM (SELECT p.*, coalesce((SELECT st.is_read FROM ref_state st WHERE st.user_key = u AND st.pub_id = p.pub_id),
                                 false) AS is_read
              FROM ref_feed(u, f) p WHERE p.position < coalesce(below, 9223372036854775807)) p
     WHERE NOT (unread_only AND p.is_read)
     ORDER BY p.position DESC LIMIT lim
$$;

-- pgfeed's rows of a feed in pages of `size`, each page asked for with before => the last position
-- of the previous one, starting below `below` (NULL: the top), at most `pages` pages (NULL: to the end).
CREATE FUNCTION walk(u text, f text, size int, unread_only bool, below bigint DEFAULT NULL, pages int DEFAULT NULL)
RETURNS TABLE (n bigint, pos bigint, activity_id bigint, source text, topic text, created_at timestamptz,
               is_read bool) LANGUAGE plpgsql STABLE AS $$
#variable_conflict use_column
DECLARE
    r record;
    got int;
    taken int := 0;
BEGIN
    n := 0;
    LOOP
        got := 0;
        FOR r IN SELECT * FROM pgfeed.page(u, f, size, below, unread_only) LOOP
            n := n + 1;
            got := got + 1;
            pos := r.position;
            activity_id := r.activity_id;
            source := r.source::text;
            topic := r.topic;
            created_at := r.created_at;
            is_read := r.is_read;
            RETURN NEXT;
        END LOOP;
        taken := taken + 1;
        -- A page that does not move below its cursor would repeat forever: the comparison shows it.
        EXIT WHEN got < size OR taken = pages OR pos >= below OR n > 100000;
        below := pos;
    END LOOP;
END $$;

-- Whether the walk differs from the reference in any row or in its length.
CREATE FUNCTION walk_differs(u text, f text, size int, unread_only bool, below bigint DEFAULT NULL,
                             pages int DEFAULT NULL) RETURNS bool LANGUAGE sql STABLE AS $$
    SELECT EXISTS (
        SELECT FROM walk(u, f, size, unread_only, below, pages) w
        FULL JOIN ref_rows(u, f, unread_only, below, size * pages) r USING (n)
         WHERE (w.pos, w.activity_id, w.source, w.topic, w.created_at, w.is_read)
               IS DISTINCT FROM (r.pos, r.activity_id, r.source, r.topic, r.created_at, r.is_read))
$$;

CREATE FUNCTION ref_is_read(u text, aid bigint) RETURNS bool LANGUAGE sql STABLE AS $$
    SELECT coalesce(s.is_read, false) FROM ref_pub p
      LEFT JOIN ref_state s ON s.user_key = u AND s.pub_id = p.pub_id
     WHERE p.activity_id = aid AND NOT p.deleted AND p.position IS NOT NULL
$$;
"""

class Differential:
    def __init__(self, db, seed):
        self.db = db
        self.seed = seed
        self.stop = threading.Event()
        self.failure = None
        self.lock = threading.Lock()
        self.journal = []  # committed operations: (worker, step, isolation, text)
        self.retries = {SERIALIZATION_FAILURE: 0, DEADLOCK_DETECTED: 0}
        self.deadlocked = {}  # operation kind -> deadlocks it lost (and retried)
        self.checks = 0
        self.ops = 0
        self.phase = 'setup'
        self.has_flush = db.session('probe').value(
            "SELECT EXISTS (SELECT FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
            "WHERE n.nspname = 'pgfeed' AND p.proname = 'flush')")

    # -- bookkeeping -------------------------------------------------------------------------------

    def fail(self, message):
        with self.lock:
            if self.failure is None:
                self.failure = message
        self.stop.set()

    def record(self, worker, step, isolation, text):
        with self.lock:
            self.journal.append((worker, step, isolation, text))
            self.ops += 1

    def on_retry(self, error):
        with self.lock:
            self.retries[sqlstate(error)] = self.retries.get(sqlstate(error), 0) + 1

    def journal_tail(self, n=40):
        with self.lock:
            tail = self.journal[-n:]
        return '\n'.join('  #%d w%d step %d [%s] %s' % (len(self.journal) - len(tail) + i + 1, w, st, iso, t)
                         for i, (w, st, iso, t) in enumerate(tail))

    # -- operations --------------------------------------------------------------------------------

    def run_op(self, s, rng, worker, step, concurrent):
        """Picks one operation and runs it, with the reference, in one transaction."""
        kinds = ['insert', 'insert_bulk', 'delete', 'update_topic', 'update_id', 'compound', 'savepoint_shapes',
                 'mark_read', 'mark_unread', 'mark_edges', 'mark_all_read', 'follow', 'unfollow']
        weights = [16, 2, 12, 8, 2, 5, 4, 10, 6, 20, 9, 4, 3]
        kind = rng.choices(kinds, weights)[0]
        writes = kind in ('insert', 'insert_bulk', 'delete', 'update_topic', 'update_id', 'compound',
                          'savepoint_shapes')
        if writes:
            isolation = rng.choices(['READ COMMITTED', 'REPEATABLE READ', 'SERIALIZABLE'], [6, 3, 1])[0]
        elif kind.startswith('mark') and concurrent:
            # Under READ COMMITTED each statement has its own snapshot, and the reference could see a
            # concurrent commit that pgfeed's statement did not: one snapshot keeps both exact.
            isolation = rng.choices(['REPEATABLE READ', 'SERIALIZABLE'], [3, 1])[0]
        elif concurrent:
            # follow/unfollow: a snapshot is not enough (their ON CONFLICT and DELETE act on the latest
            # committed rows), so they take a lock on (user, topic) first and see everything before it.
            isolation = 'READ COMMITTED'
        else:
            isolation = rng.choices(['READ COMMITTED', 'REPEATABLE READ', 'SERIALIZABLE'], [4, 3, 1])[0]
        holder = {}

        def body(tx):
            holder['text'] = getattr(self, 'op_' + kind)(tx, rng)

        def on_retry(error):
            self.on_retry(error)
            if sqlstate(error) == DEADLOCK_DETECTED:
                with self.lock:
                    self.deadlocked[kind] = self.deadlocked.get(kind, 0) + 1

        s.transaction(body, isolation, retry_codes=(SERIALIZATION_FAILURE, DEADLOCK_DETECTED), on_retry=on_retry)
        if writes:
            self.flush(s)
        self.record(worker, step, isolation, holder['text'])

    def flush(self, s):
        """Numbers what has committed where pgfeed numbers items after commit (pgfeed.flush exists);
        where it numbers them at commit there is nothing to do."""
        if self.has_flush:
            s.execute('CALL pgfeed.flush()')

    @staticmethod
    def live_ids(tx):
        return [r[0] for r in tx.all('SELECT id FROM app ORDER BY id')]

    @staticmethod
    def random_topic(rng):
        return None if rng.random() < 0.05 else rng.choice(TOPIC_VALUES)

    def insert_rows(self, tx, rng, n):
        ids = []
        for _ in range(n):
            ids.append(tx.value("INSERT INTO app (id, mp_id, body) VALUES (nextval('app_ids'), %s, 'x') RETURNING id",
                                (self.random_topic(rng),)))
        return ids

    def op_insert(self, tx, rng):
        if tx.value('SELECT count(*) FROM app') >= MAX_LIVE:
            return self.op_delete(tx, rng)
        if rng.random() < 0.3:
            n = rng.randint(2, 4)
            topics = [self.random_topic(rng) for _ in range(n)]
            tx.execute("INSERT INTO app (id, mp_id) SELECT nextval('app_ids'), t FROM unnest(%s::int[]) t", (topics,))
            return 'insert %d rows in one statement, topics %s' % (n, topics)
        ids = self.insert_rows(tx, rng, rng.choice([1, 1, 2]))
        return 'insert ids %s' % ids

    def op_insert_bulk(self, tx, rng):
        """Many rows in one statement (over chunk edges as positions grow), or as many deleted."""
        live = tx.value('SELECT count(*) FROM app')
        n = rng.randint(20, 200)
        if live + n > MAX_LIVE:
            victims = rng.sample(self.live_ids(tx), min(live, n))
            tx.execute('DELETE FROM app WHERE id = ANY(%s)', (victims,))
            return 'delete %d rows in one statement' % len(victims)
        tx.execute("INSERT INTO app (id, mp_id, body) SELECT nextval('app_ids'), "
                   "CASE WHEN g %% 40 = 0 THEN NULL ELSE 1 + g %% 4 END, 'x' FROM generate_series(1, %s) g", (n,))
        return 'insert %d rows in one statement' % n

    def op_delete(self, tx, rng):
        ids = self.live_ids(tx)
        victims = rng.sample(ids, min(len(ids), rng.choice([1, 1, 2, 3])))
        tx.execute('DELETE FROM app WHERE id = ANY(%s)', (victims,))
        return 'delete ids %s' % victims

    def op_update_topic(self, tx, rng):
        ids = self.live_ids(tx)
        if not ids:
            return 'update_topic: no rows'
        victim = rng.choice(ids)
        topic = self.random_topic(rng)
        tx.execute('UPDATE app SET mp_id = %s WHERE id = %s', (topic, victim))
        return 'update id %d set mp_id = %s' % (victim, topic)

    def op_update_id(self, tx, rng):
        ids = self.live_ids(tx)
        if not ids:
            return 'update_id: no rows'
        victim = rng.choice(ids)
        new_id = tx.value("UPDATE app SET id = nextval('app_ids') WHERE id = %s RETURNING id", (victim,))
        return 'update id %d set id = %s' % (victim, new_id)

    def op_compound(self, tx, rng):
        """Several changes in one transaction, some undone by savepoint rollbacks."""
        steps = []
        mine = self.insert_rows(tx, rng, rng.randint(1, 3))
        steps.append('insert %s' % mine)
        for _ in range(rng.randint(1, 4)):
            what = rng.choice(['savepoint_insert', 'savepoint_delete', 'delete_mine', 'retopic_mine',
                               'retopic_old', 'insert', 'error_savepoint'])
            if what == 'savepoint_insert':
                tx.execute('SAVEPOINT s')
                extra = self.insert_rows(tx, rng, 1)
                if rng.random() < 0.5:
                    tx.execute('UPDATE app SET mp_id = %s WHERE id = %s', (self.random_topic(rng), extra[0]))
                if rng.random() < 0.5:
                    tx.execute('ROLLBACK TO SAVEPOINT s')
                    steps.append('savepoint: insert %s, rolled back' % extra)
                else:
                    tx.execute('RELEASE SAVEPOINT s')
                    mine += extra
                    steps.append('savepoint: insert %s, released' % extra)
            elif what == 'savepoint_delete' and mine:
                tx.execute('SAVEPOINT s')
                victim = rng.choice(mine)
                tx.execute('DELETE FROM app WHERE id = %s', (victim,))
                tx.execute('ROLLBACK TO SAVEPOINT s')
                steps.append('savepoint: delete %d, rolled back' % victim)
            elif what == 'delete_mine' and mine:
                victim = mine.pop(rng.randrange(len(mine)))
                tx.execute('DELETE FROM app WHERE id = %s', (victim,))
                steps.append('delete %d' % victim)
            elif what == 'retopic_mine' and mine:
                victim = rng.choice(mine)
                topic = self.random_topic(rng)
                tx.execute('UPDATE app SET mp_id = %s WHERE id = %s', (topic, victim))
                steps.append('update %d mp_id = %s' % (victim, topic))
            elif what == 'retopic_old':
                # An existing row, inside a savepoint that may be rolled back.
                old = [i for i in self.live_ids(tx) if i not in mine]
                if old:
                    victim = rng.choice(old)
                    topic = self.random_topic(rng)
                    rollback = rng.random() < 0.5
                    tx.execute('SAVEPOINT s')
                    tx.execute('UPDATE app SET mp_id = %s WHERE id = %s', (topic, victim))
                    tx.execute('ROLLBACK TO SAVEPOINT s' if rollback else 'RELEASE SAVEPOINT s')
                    steps.append('update old %d mp_id = %s%s' % (victim, topic, ', rolled back' if rollback else ''))
            elif what == 'insert':
                extra = self.insert_rows(tx, rng, 1)
                mine += extra
                steps.append('insert %s' % extra)
            elif what == 'error_savepoint':
                tx.execute('SAVEPOINT s')
                extra = self.insert_rows(tx, rng, 1)
                try:
                    tx.execute('INSERT INTO app (id, mp_id) VALUES (%s, 1)', (extra[0],))  # duplicate key
                except Exception as e:
                    if sqlstate(e) != '23505':
                        raise
                tx.execute('ROLLBACK TO SAVEPOINT s')
                steps.append('savepoint: insert %s then a failing statement, rolled back' % extra)
        return 'compound: ' + '; '.join(steps)

    def op_savepoint_shapes(self, tx, rng):
        """Changes undone by a savepoint or a PL/pgSQL exception block, some after the deferred
        constraints ran early (SET CONSTRAINTS ALL IMMEDIATE): only what commits may reach the feeds."""
        shape = rng.choice(['immediate_then_rollback', 'delete_rolled_back', 'exception_block'])
        immediate = rng.random() < 0.5
        if shape == 'immediate_then_rollback':
            mine = self.insert_rows(tx, rng, rng.randint(1, 3))
            tx.execute('SAVEPOINT s')
            tx.execute('SET CONSTRAINTS ALL IMMEDIATE')
            tx.execute('ROLLBACK TO SAVEPOINT s')
            return 'insert %s; SAVEPOINT s; SET CONSTRAINTS ALL IMMEDIATE; ROLLBACK TO s' % mine
        victims = rng.sample(self.live_ids(tx), 2)
        if shape == 'delete_rolled_back':
            tx.execute('SAVEPOINT s')
            tx.execute('DELETE FROM app WHERE id = ANY(%s)', (victims,))
            if immediate:
                tx.execute('SET CONSTRAINTS ALL IMMEDIATE')
            tx.execute('ROLLBACK TO SAVEPOINT s')
            return 'SAVEPOINT s; delete %s;%s ROLLBACK TO s' % (victims, ' SET CONSTRAINTS ALL IMMEDIATE;' * immediate)
        before = self.insert_rows(tx, rng, 1) if rng.random() < 0.5 else []
        topic = self.random_topic(rng)
        n = rng.randint(1, 3)
        # No parameters: the block is sent as it is.
        tx.execute("DO $$ BEGIN BEGIN "
                   "INSERT INTO app (id, mp_id, body) SELECT nextval('app_ids'), %s, 'x' FROM generate_series(1, %d); "
                   "DELETE FROM app WHERE id IN (%d, %d); %s"
                   "RAISE EXCEPTION 'undo'; "
                   "EXCEPTION WHEN others THEN NULL; END; END $$"
                   % ('NULL' if topic is None else topic, n, victims[0], victims[1],
                      'SET CONSTRAINTS ALL IMMEDIATE; ' if immediate else ''))
        return ('%sexception block: insert %d, delete %s,%s raise' %
                ('insert %s; ' % before if before else '', n, victims,
                 ' SET CONSTRAINTS ALL IMMEDIATE,' if immediate else ''))

    def pick_ids(self, tx, rng):
        # Numbered items: a mark of one not numbered yet is recorded for later (09_numbering.sql and
        # commit_order.py test that), which the reference does not model.
        ids = [r[0] for r in tx.all('SELECT DISTINCT activity_id FROM ref_pub WHERE position IS NOT NULL '
                                    'AND NOT deleted ORDER BY 1')]
        dead = [r[0] for r in tx.all('SELECT DISTINCT activity_id FROM ref_pub WHERE deleted ORDER BY 1 LIMIT 50')]
        picked = rng.sample(ids, min(len(ids), rng.randint(1, 5)))
        if dead and rng.random() < 0.2:
            picked.append(rng.choice(dead))
        if rng.random() < 0.05:
            picked.append(MISSING_ID)
        if picked and rng.random() < 0.1:
            picked.append(picked[0])  # duplicate id
        return picked

    def op_mark_read(self, tx, rng, to_read=True):
        user = rng.choice(USERS)
        ids = self.pick_ids(tx, rng)
        fn = 'mark_read' if to_read else 'mark_unread'
        if rng.random() < 0.3:
            got = tx.value('SELECT pgfeed.%s(%%s, %%s, source => %%s)' % fn, (user, ids, 'app'))
        else:
            got = tx.value('SELECT pgfeed.%s(%%s, %%s)' % fn, (user, ids))
        expected = tx.value('SELECT ref_mark(%s, %s, %s)', (user, ids, to_read))
        text = '%s(%s, %s) = %s' % (fn, user, ids, got)
        if got != expected:
            raise TestFailure('%s returned %s, the reference changed %s items' % (text, got, expected))
        return text

    def op_mark_unread(self, tx, rng):
        return self.op_mark_read(tx, rng, to_read=False)

    def op_mark_edges(self, tx, rng):
        """Marks placed at chunk edges: positions k*1024-1, k*1024 and k*1024+1, runs across an edge
        long enough for a page to jump over, a whole chunk, a dense (bitmap) or a sparse chunk."""
        user = rng.choice(USERS)
        last = tx.value('SELECT n FROM ref_seq')
        edge = CHUNK * rng.randint(1, max(1, last // CHUNK))
        shape = rng.choice(['edge', 'edge', 'run', 'run', 'chunk', 'dense', 'sparse'])
        if shape == 'edge':
            positions = [edge + d for d in rng.choice([[-1], [0], [1], [-1, 0], [0, 1], [-1, 0, 1]])]
        elif shape == 'run':  # ending or starting at the edge, or across it
            first = rng.choice([edge - rng.randint(2, 80), edge - 1, edge, edge + 1])
            last_marked = rng.choice([edge - 1, edge, edge + 1, edge + rng.randint(2, 80)])
            positions = list(range(first, max(first, last_marked) + 1))
        else:
            first = edge - CHUNK * rng.randint(0, 1)  # the chunk below the edge or the one above
            if shape == 'chunk':
                positions = list(range(first, first + CHUNK))
            else:
                n = rng.randint(64, 300) if shape == 'dense' else rng.randint(1, 8)
                positions = rng.sample(range(first, first + CHUNK), n)
        to_read = rng.random() < 0.7
        got = self.mark_positions(tx, user, positions, to_read)
        return '%s(%s, %s at %d, positions %d..%d) = %s' % ('mark_read' if to_read else 'mark_unread', user, shape,
                                                            edge, min(positions), max(positions), got)

    def op_mark_all_read(self, tx, rng):
        user = rng.choice(USERS)
        feed = rng.choice(['all', 'all', 'following'] + FOLLOWABLE)
        up_to = None
        last = tx.value('SELECT n FROM ref_seq')
        if rng.random() < 0.4:  # a horizon at a chunk edge
            up_to = CHUNK * rng.randint(1, max(1, last // CHUNK)) + rng.choice([-1, 0, 1])
        elif rng.random() < 0.85:
            up_to = rng.randint(0, last + 5)
        got = tx.value('SELECT pgfeed.mark_all_read(%s, %s, %s)', (user, feed, up_to))
        visible = tx.value('SELECT n FROM ref_seq')
        pgfeed_visible = tx.value('SELECT last_position FROM pgfeed.sequencer')
        expected = tx.value('SELECT ref_mark_all(%s, %s, %s)', (user, feed, up_to))
        text = 'mark_all_read(%s, %s, up_to => %s) = %s (visible last position %s)' % (user, feed, up_to, got, visible)
        if visible != pgfeed_visible:
            raise TestFailure('%s: pgfeed.sequencer says %s, the reference %s' % (text, pgfeed_visible, visible))
        if got != expected:
            raise TestFailure('%s returned %s, the reference marked %s items read' % (text, got, expected))
        return text

    def op_follow(self, tx, rng, follow=True):
        user = rng.choice(USERS)
        topic = rng.choice(FOLLOWABLE)
        fn = 'follow' if follow else 'unfollow'
        # Serializes the test's own follow and unfollow calls for one (user, topic), so that the
        # reference's statements see what pgfeed's saw (mark_all_read reads follows in a snapshot).
        tx.execute('SELECT pg_advisory_xact_lock(hashtext(%s))', ('follow:%s:%s' % (user, topic),))
        got = tx.value('SELECT pgfeed.%s(%%s, %%s)' % fn, (user, topic))
        if follow:
            tx.execute('INSERT INTO ref_follows VALUES (%s, %s) ON CONFLICT DO NOTHING', (user, topic))
        else:
            tx.execute('DELETE FROM ref_follows WHERE user_key = %s AND topic = %s', (user, topic))
        expected = tx.cur.rowcount == 1
        text = '%s(%s, %s) = %s' % (fn, user, topic, got)
        if got != expected:
            raise TestFailure('%s, the reference says %s' % (text, expected))
        return text

    def op_unfollow(self, tx, rng):
        return self.op_follow(tx, rng, follow=False)

    # -- checks ------------------------------------------------------------------------------------

    def check(self, s, rng, snapshot, full=False):
        """Compares everything observable for every user and feed; raises TestFailure on a difference."""
        if snapshot:
            self.flush(s)
            s.execute('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY')
        try:
            self._check(s, rng, full or self.checks % 50 == 0, at_rest=not snapshot)
        finally:
            if snapshot:
                s.rollback_quietly()
        with self.lock:
            self.checks += 1

    def _check(self, s, rng, full, at_rest):
        if at_rest:  # everything committed is numbered: the live items are exactly the rows of app
            differ = s.all("SELECT a.id, 'mp_id:' || a.mp_id, i.topic FROM app a FULL JOIN "
                           "(SELECT i.activity_id, t.name AS topic FROM pgfeed.items i "
                           " LEFT JOIN pgfeed.topics t USING (topic_id) WHERE NOT i.deleted) i "
                           "ON i.activity_id = a.id WHERE a.id IS NULL OR i.activity_id IS NULL "
                           "OR i.topic IS DISTINCT FROM 'mp_id:' || a.mp_id LIMIT 8")
            if differ:
                raise TestFailure('the live items are not the rows of app (id, app topic, item topic): %s' % differ)
        last = s.value('SELECT n FROM ref_seq')
        if s.value('SELECT last_position FROM pgfeed.sequencer') != last:
            raise TestFailure('pgfeed.sequencer.last_position %s, the reference numbered %s items'
                              % (s.value('SELECT last_position FROM pgfeed.sequencer'), last))

        # Every user's 'all' and one more feed (every feed in a full check), read and unread-only,
        # walked in pages of 1000; then one feed in small pages, the size cycling through WALK_SIZES;
        # then pages of 1 to 3 from right around every chunk edge. Rows are compared in the
        # database; a walk that differs is fetched to be shown.
        walked = FEEDS if full else ['all', FEEDS[1 + self.checks % (len(FEEDS) - 1)]]
        for u, f, only in s.all('SELECT u, f, m FROM unnest(%s::text[]) u, unnest(%s::text[]) f, '
                                'unnest(ARRAY[false, true]) m WHERE walk_differs(u, f, 1000, m)', (USERS, walked)):
            self.explain_walk(s, u, f, 1000, only)
        size = WALK_SIZES[self.checks % len(WALK_SIZES)]
        user, feed = rng.choice(USERS), rng.choice(['all', 'all', 'following'] + FOLLOWABLE)
        for only in (False, True):
            if s.value('SELECT walk_differs(%s, %s, %s, %s)', (user, feed, size, only)):
                self.explain_walk(s, user, feed, size, only)
        user, feed = rng.choice(USERS), rng.choice(['all', 'all', 'following'] + FOLLOWABLE)
        befores = [k * CHUNK + d for k in range(1, last // CHUNK + 1) for d in (-1, 0, 1, 2)] + [last + 1]
        for b, small, only in s.all(
                'SELECT b, z, m FROM unnest(%s::int8[]) b, unnest(ARRAY[1, 2, 3]) z, unnest(ARRAY[false, true]) m '
                'WHERE walk_differs(%s, %s, z, m, b, %s)', (befores, user, feed, EDGE_WALK_PAGES)):
            self.explain_walk(s, user, feed, small, only, b, EDGE_WALK_PAGES)

        # Counts: unread_count, and count_since at several cursors.
        afters = sorted({0, last // 2, rng.randint(0, last + 1), max(last - 3, 0), last, last + 3})
        for u, f, a, got, exp in s.all(
                'WITH feed AS MATERIALIZED (SELECT u, f, p.position, coalesce(st.is_read, false) AS is_read '
                '  FROM unnest(%s::text[]) u CROSS JOIN unnest(%s::text[]) f CROSS JOIN LATERAL ref_feed(u, f) p '
                '  LEFT JOIN ref_state st ON st.user_key = u AND st.pub_id = p.pub_id), '
                'expected AS (SELECT u, f, a, count(feed.position) FILTER (WHERE CASE WHEN a IS NULL '
                '  THEN NOT feed.is_read ELSE feed.position > a END) AS n '
                '  FROM unnest(%s::text[]) u CROSS JOIN unnest(%s::text[]) f CROSS JOIN unnest(%s::int8[]) a '
                '  LEFT JOIN feed USING (u, f) GROUP BY u, f, a) '
                'SELECT u, f, a, CASE WHEN a IS NULL THEN pgfeed.unread_count(u, f) '
                '  ELSE pgfeed.count_since(u, f, a) END, n FROM expected',
                (USERS, FEEDS, USERS, FEEDS, [None] + afters)):
            if got != exp and a is None:
                raise TestFailure('unread_count(%s, %s) = %s, the reference counts %d unread' % (u, f, got, exp))
            if got != exp:
                raise TestFailure('count_since(%s, %s, %d) = %s, the reference has %d items above %d'
                                  % (u, f, a, got, exp, a))

        # is_read of every activity id ever used now and then, of a sample otherwise: live, deleted
        # and re-published items, and one that never existed.
        ids = [r[0] for r in s.all('SELECT DISTINCT activity_id FROM ref_pub ORDER BY 1')]
        if not full:
            ids = rng.sample(ids, min(len(ids), 40))
        with_source = rng.random() < 0.5
        for u, aid, got, exp in s.all(
                'SELECT u, a, pgfeed.is_read(u, a' + (", 'app'" if with_source else '') + '), ref_is_read(u, a) '
                'FROM unnest(%s::text[]) u, unnest(%s::int8[]) a ORDER BY 1, 2',
                (USERS, ids + [MISSING_ID])):
            if got != exp:
                raise TestFailure('is_read(%s, %d) = %s, the reference says %s' % (u, aid, got, exp))

    @staticmethod
    def explain_walk(s, user, feed, size, unread_only, below=None, pages=None):
        """Raises the TestFailure of a walk that walk_differs found different, with its rows."""
        what = 'pages of %d of (%s, %s, unread_only => %s)%s walked with before =>' % (
            size, user, feed, unread_only, '' if below is None else ' from before => %d, %d pages,' % (below, pages))
        got = s.all('SELECT pos, activity_id, source, topic, created_at, is_read '
                    'FROM walk(%s, %s, %s, %s, %s, %s) ORDER BY n',
                    (user, feed, size, unread_only, below, pages))
        limit = None if pages is None else size * pages
        expected = s.all('SELECT pos, activity_id, source, topic, created_at, is_read '
                         'FROM ref_rows(%s, %s, %s, %s, %s) ORDER BY n', (user, feed, unread_only, below, limit))
        compare_rows(what, got, expected)
        raise TestFailure('%s differs from the reference only in the database\'s comparison' % what)

    # -- phases ------------------------------------------------------------------------------------

    def set_up(self, s):
        """BULK_ITEMS rows in one statement, then each user's read state shaped at the chunk edges
        below them (random operations move on from there): alice has single marks at k*1024 and
        k*1024+1, bob runs that end at k*1024-1 or start at k*1024+1 and a dense chunk, carol a
        horizon inside a chunk, unread items at its edges and a run of marks from the next edge up."""
        s.execute('BEGIN')
        s.execute("INSERT INTO app (id, mp_id, body) SELECT nextval('app_ids'), "
                  "CASE WHEN g %% 40 = 0 THEN NULL ELSE 1 + g %% 4 END, 'x' FROM generate_series(1, %s) g",
                  (BULK_ITEMS,))
        s.execute('COMMIT')
        self.flush(s)
        edges = range(CHUNK, BULK_ITEMS, CHUNK)
        rng = random.Random(self.seed)
        horizon = CHUNK + CHUNK // 2
        marks = [('alice', [p for k in edges for p in (k, k + 1)], True),
                 ('bob', [p for k in edges for p in list(range(k - 40, k)) + list(range(k + 1, k + 41))], True),
                 ('bob', rng.sample(range(CHUNK, 2 * CHUNK), 200), True),
                 ('carol', [CHUNK - 1, CHUNK, horizon - 1, horizon], False),
                 ('carol', list(range(2 * CHUNK, BULK_ITEMS + 1)), True)]
        s.transaction(lambda tx: self.mark_all(tx, 'carol', 'all', horizon))
        self.record(0, -1, 'READ COMMITTED', 'set-up: mark_all_read(carol, all, up_to => %d)' % horizon)
        for user, positions, to_read in marks:
            got = s.transaction(lambda tx: self.mark_positions(tx, user, positions, to_read))
            self.record(0, -1, 'READ COMMITTED', 'set-up: %s(%s, positions %d..%d, %d of them) = %d' % (
                'mark_read' if to_read else 'mark_unread', user, min(positions), max(positions), len(positions), got))

    @staticmethod
    def mark_all(tx, user, feed, up_to):
        got = tx.value('SELECT pgfeed.mark_all_read(%s, %s, %s)', (user, feed, up_to))
        expected = tx.value('SELECT ref_mark_all(%s, %s, %s)', (user, feed, up_to))
        if got != expected:
            raise TestFailure('mark_all_read(%s, %s, up_to => %s) returned %s, the reference marked %s items read'
                              % (user, feed, up_to, got, expected))

    @staticmethod
    def mark_positions(tx, user, positions, to_read):
        """Marks the live items at `positions` read or unread; returns what pgfeed reported."""
        ids = [r[0] for r in tx.all('SELECT activity_id FROM ref_pub WHERE position = ANY(%s) AND NOT deleted',
                                    (positions,))]
        fn = 'mark_read' if to_read else 'mark_unread'
        got = tx.value('SELECT pgfeed.%s(%%s, %%s)' % fn, (user, ids))
        expected = tx.value('SELECT ref_mark(%s, %s, %s)', (user, ids, to_read))
        if got != expected:
            raise TestFailure('%s(%s, %d ids at positions %d..%d) returned %s, the reference changed %s items'
                              % (fn, user, len(ids), min(positions), max(positions), got, expected))
        return got

    def phase_serial(self, steps):
        self.phase = 'phase 1 (one session, check after every operation)'
        s = self.db.session('serial')
        checker = self.db.session('checker')
        rng = random.Random(self.seed)
        check_rng = random.Random(self.seed + 1)
        try:
            self.check(checker, check_rng, snapshot=False)
        except TestFailure as e:
            raise TestFailure('%s\n  after the set-up (seed %d)' % (e, self.seed))
        for step in range(steps):
            try:
                self.run_op(s, rng, 0, step, concurrent=False)
            except TestFailure as e:
                raise TestFailure('%s\n  at step %d of phase 1 (seed %d)' % (e, step, self.seed))
            try:
                self.check(checker, check_rng, snapshot=False)
            except TestFailure as e:
                raise TestFailure('%s\n  after step %d of phase 1 (seed %d)' % (e, step, self.seed))

    def phase_concurrent(self, workers, steps_each):
        self.phase = 'phase 2 (%d concurrent sessions, continuous checks)' % workers
        progress = [0] * workers

        def work(index):
            s = self.db.session('worker%d' % index)
            rng = random.Random(self.seed * 1000 + index + 1)
            try:
                for step in range(steps_each):
                    if self.stop.is_set():
                        return
                    progress[index] = step
                    self.run_op(s, rng, index + 1, step, concurrent=True)
            except TestFailure as e:
                self.fail('worker %d step %d: %s' % (index + 1, progress[index], e))
            except Exception as e:
                self.fail('worker %d step %d: unexpected %s: %s' % (index + 1, progress[index], type(e).__name__, e))

        threads = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(workers)]
        for t in threads:
            t.start()
        checker = self.db.session('checker2')
        check_rng = random.Random(self.seed + 2)
        try:
            while any(t.is_alive() for t in threads) and not self.stop.is_set():
                self.check(checker, check_rng, snapshot=True)
        except TestFailure as e:
            self.fail('concurrent check (workers at steps %s): %s' % (progress, e))
        except Exception as e:
            self.fail('concurrent check: unexpected %s: %s' % (type(e).__name__, e))
        for t in threads:
            t.join(120)
        if self.failure:
            raise TestFailure(self.failure)
        try:
            self.check(checker, check_rng, snapshot=False, full=True)
        except TestFailure as e:
            raise TestFailure('final check after phase 2: %s' % e)


def compare_rows(what, got, expected):
    got = [tuple(r) for r in got]
    expected = [tuple(r) for r in expected]
    if got == expected:
        return
    by_pos_got = {r[0]: r for r in got}
    by_pos_exp = {r[0]: r for r in expected}
    missing = sorted(set(by_pos_exp) - set(by_pos_got), reverse=True)[:6]
    extra = sorted(set(by_pos_got) - set(by_pos_exp), reverse=True)[:6]
    differ = [(by_pos_got[p], by_pos_exp[p]) for p in sorted(set(by_pos_got) & set(by_pos_exp), reverse=True)
              if by_pos_got[p] != by_pos_exp[p]][:6]
    lines = ['%s differs from the reference (%d rows, expected %d)' % (what, len(got), len(expected))]
    if missing:
        lines.append('  missing: %s' % [by_pos_exp[p] for p in missing])
    if extra:
        lines.append('  unexpected: %s' % [by_pos_got[p] for p in extra])
    for g, e in differ:
        lines.append('  got %s, expected %s' % (g, e))
    if not (missing or extra or differ):
        lines.append('  same rows in another order: %s' % [r[0] for r in got][:20])
    raise TestFailure('\n'.join(lines))


def main():
    seed = seed_from(sys.argv, default=1)
    total = int(os.environ.get('DIFF_OPS', str(DEFAULT_OPS)))
    serial_steps = total // 10
    workers = 2
    steps_each = (total - serial_steps) // workers
    print('%s: seed %d (rerun: python3 test/concurrency/differential.py %d), %d operations'
          % (LABEL, seed, seed, total), flush=True)
    state = {}

    def body(holder):
        with TestDatabase('diff') as db:
            holder['db'] = db
            setup = db.session('schema')
            setup.execute(SCHEMA)
            test = state['test'] = Differential(db, seed)
            test.set_up(setup)
            set_up = test.ops
            t0 = time.monotonic()
            test.phase_serial(serial_steps)
            t1 = time.monotonic()
            test.phase_concurrent(workers, steps_each)
            t2 = time.monotonic()
            live = setup.value('SELECT count(*) FROM app')
            return ('seed %d: %d operations (%d to set up, %d serial in %.1f s, %d concurrent in %.1f s), %d checks, '
                    '%d retries after serialization failures, %d after deadlocks%s, %d live items at the end'
                    % (seed, test.ops, set_up, serial_steps, t1 - t0, test.ops - set_up - serial_steps, t2 - t1,
                       test.checks,
                       test.retries[SERIALIZATION_FAILURE], test.retries[DEADLOCK_DETECTED],
                       ' (%s)' % ', '.join('%s %d' % kv for kv in sorted(test.deadlocked.items()))
                       if test.deadlocked else '', live))

    def on_failure():
        if 'test' not in state:
            return 'seed %d' % seed
        test = state['test']
        return ('seed %d (rerun: python3 test/concurrency/differential.py %d), failed in %s; '
                'last committed operations:\n%s' % (seed, seed, test.phase, test.journal_tail()))

    # The watchdog grows with a longer run on demand.
    return run_main(LABEL, body, watchdog_seconds=170 + total // 10, on_failure=on_failure)

if __name__ == '__main__':
    sys.exit(main())
