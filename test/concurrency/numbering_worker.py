#!/usr/bin/env python3
"""The numbering worker: items appear after commit without anyone waiting for them, and what is
committed while the worker is away is numbered when it is back.

No CALL pgfeed.flush() here except where named: the items must appear by the worker alone, so
every check polls the feed with a deadline.
  1. A worker paused (SIGSTOP) in the middle of a run of commits: inserting and marking commits go
     on without waiting; nothing new is numbered meanwhile; a transaction that stays open across
     the pause and many later rounds lands above everything committed before it; after SIGCONT the
     backlog is numbered, dense, in commit order.
  2. A worker stopped with pg_terminate_backend: the next commit brings a new one, which numbers
     what was committed meanwhile.
  3. A worker killed with SIGKILL (the server restarts every session): the launcher starts a
     worker again, and the rows committed before the kill become items.
  4. Housekeeping: read state that mark_all_read retired is deleted by the worker, nobody calling
     pgfeed.compact().
"""
import os
import signal
import sys

from _harness import TestDatabase, TestFailure, psycopg2, run_main, wait_until

LABEL = 'numbering_worker.py'


def expect(condition, message):
    if not condition:
        raise TestFailure(message)


class Worker:
    def __init__(self, db):
        self.db = db
        self.monitor = db.session('monitor')

    def pid(self):
        return self.monitor.value("SELECT pid FROM pg_stat_activity WHERE backend_type = 'pgfeed numbering' "
                                  "AND datname = current_database()")

    def running_pid(self, app):
        """Wakes the worker with a committed change and returns its pid once it serves the database."""
        app.execute('INSERT INTO app (mp_id) VALUES (0)')
        return wait_until(self.pid, 'the numbering worker to start')


def numbered(session, ids):
    """How many of `ids` have an item."""
    return session.value('SELECT count(*) FROM pgfeed.page(%s, %s, 1000) WHERE activity_id = ANY(%s)',
                         ('observer', 'all', list(ids)))


def wait_numbered(session, ids, what, timeout=20.0):
    wait_until(lambda: numbered(session, ids) == len(ids), what, timeout)


def positions(session, ids):
    return [r[0] for r in session.all('SELECT position FROM pgfeed.page(%s, %s, 1000) WHERE activity_id = ANY(%s) '
                                      'ORDER BY position', ('observer', 'all', list(ids)))]


def scenario_paused(db, app, worker):
    pid = worker.running_pid(app)
    app.flush()
    long_tx = db.session('long')
    long_tx.execute('BEGIN')
    long_id = long_tx.value('INSERT INTO app (mp_id) VALUES (9) RETURNING id')
    os.kill(pid, signal.SIGSTOP)
    try:
        committed = []
        writers = [db.session('writer%d' % k) for k in range(3)]
        for i in range(30):
            s = writers[i % 3]
            s.execute('BEGIN')
            committed.append(s.value('INSERT INTO app (mp_id) VALUES (%s) RETURNING id', (i % 4,)))
            s.execute('SELECT pgfeed.mark_read(%s, %s)', ('reader%d' % (i % 3), committed[:1]))
            s.execute('COMMIT')  # would wait for a lock held through another's commit: lock_timeout fails it
        expect(numbered(app, committed) == 0, '1: items were numbered while the worker was stopped')
        expect(long_tx.value('SELECT count(*) FROM pg_stat_activity WHERE pid = %s', (pid,)) == 1,
               '1: the worker is gone while stopped')
    finally:
        os.kill(pid, signal.SIGCONT)
    wait_numbered(app, committed, '1: the rows committed while the worker was stopped to be numbered')
    got = positions(app, committed)
    expect(got == list(range(got[0], got[0] + len(committed))), '1: the backlog has holes: %s' % got)
    in_order = [p for _, p in sorted(zip(committed, got))]
    expect(in_order == sorted(in_order), '1: rows committed one after another got positions %s' % in_order)
    for k in range(3):
        expect(app.value('SELECT pgfeed.is_read(%s, %s)', ('reader%d' % k, committed[0])) is True,
               '1: reader%d marked the first row read before it was numbered, and it is not read' % k)
    for _ in range(5):  # rounds go by while the long transaction stays open
        late = app.value('INSERT INTO app (mp_id) VALUES (1) RETURNING id')
        wait_numbered(app, [late], '1: a row committed while a transaction stays open')
    top = app.value('SELECT max(position) FROM pgfeed.page(%s, %s, 1)', ('observer', 'all'))
    long_tx.execute('COMMIT')
    wait_numbered(app, [long_id], '1: the long transaction\'s row')
    expect(positions(app, [long_id]) == [top + 1], '1: the long transaction committed last but is at %s, not %d'
           % (positions(app, [long_id]), top + 1))


def scenario_terminated(db, app, worker):
    pid = worker.running_pid(app)
    app.execute('SELECT pg_terminate_backend(%s)', (pid,))
    wait_until(lambda: worker.pid() != pid, '2: the terminated worker to leave')
    ids = [app.value('INSERT INTO app (mp_id) VALUES (2) RETURNING id') for _ in range(5)]
    wait_numbered(app, ids, '2: rows committed after the worker was terminated')


def scenario_killed(db, app, worker):
    pid = worker.running_pid(app)
    app.flush()
    ids = [app.value('INSERT INTO app (mp_id) VALUES (3) RETURNING id') for _ in range(5)]
    os.kill(pid, signal.SIGKILL)  # the postmaster resets every session and restarts the workers

    def broken():
        try:
            app.execute('SELECT 1')
        except psycopg2.Error:
            return True
        return False

    def reconnected():
        try:
            fresh = db.session('after-crash')
            fresh.execute('SELECT 1')
        except psycopg2.OperationalError:
            return None
        return fresh
    wait_until(broken, '3: the server to end the sessions after the worker was killed', timeout=30)
    fresh = wait_until(reconnected, '3: the server to accept sessions after the crash', timeout=60, interval=0.1)
    wait_numbered(fresh, ids, '3: rows committed before the worker was killed', timeout=30)
    got = positions(fresh, ids)
    expect(got == list(range(got[0], got[0] + len(ids))), '3: positions after the crash have holes: %s' % got)


def scenario_housekeeping(db, app, worker):
    ids = [app.value('INSERT INTO app (mp_id) VALUES (1) RETURNING id') for _ in range(3)]
    app.flush()
    app.execute("INSERT INTO app (mp_id) SELECT 1 FROM generate_series(1, 2100)")
    app.flush()
    spread = app.all("SELECT activity_id FROM pgfeed.page('observer', 'all', 1000)")[::50]
    app.execute('SELECT pgfeed.mark_read(%s, %s)', ('tidy', ids + [r[0] for r in spread]))
    app.execute("SELECT pgfeed.mark_all_read('tidy')")

    def retired():
        return app.value('SELECT count(*) FROM pgfeed.read_chunks c JOIN pgfeed.readers r USING (user_id) '
                         'WHERE r.user_key = %s AND c.generation <> r.generation', ('tidy',))
    expect(retired() > 0, '4: test bug: mark_all_read retired no read state')
    worker.running_pid(app)
    wait_until(lambda: retired() == 0, '4: the worker to delete the retired read state', timeout=30, interval=0.2)
    expect(app.value("SELECT pgfeed.unread_count('tidy')") == 1, '4: the unread count changed with housekeeping')


def main():
    def body(holder):
        with TestDatabase('worker') as db:
            holder['db'] = db
            app = db.session('app')
            app.execute('CREATE TABLE app (id bigserial PRIMARY KEY, mp_id int, '
                        'created_at timestamptz NOT NULL DEFAULT now())')
            app.execute("SELECT pgfeed.attach('app', 'mp_id')")
            worker = Worker(db)
            scenario_paused(db, app, worker)
            scenario_terminated(db, app, worker)
            scenario_killed(db, app, worker)
            scenario_housekeeping(db, db.session('app2'), Worker(db))  # the crash ended the old sessions
            return '4 scenarios'

    return run_main(LABEL, body, watchdog_seconds=150)


if __name__ == '__main__':
    sys.exit(main())
