#!/usr/bin/env python3
"""NOTIFY pgfeed is a doorbell: one notification per committed transaction that wrote events.

A listener session counts notifications while another session runs transactions:
  1. a transaction with several inserts, a delete and marks rings exactly once, after commit;
  2. a rolled-back transaction, a statement that changes nothing pgfeed watches, and a mark that
     changes nothing ring nothing (checked by a committed transaction rung right after them:
     notifications arrive in commit order, so when its ring arrives, nothing else came before it);
  3. the notification carries no data (an empty payload).
"""
import select
import sys

from _harness import TestDatabase, TestFailure, run_main

LABEL = 'outbox_doorbell.py'


def expect(condition, message):
    if not condition:
        raise TestFailure(message)


class Listener:
    def __init__(self, db):
        self.session = db.session('listener')
        self.session.execute('LISTEN pgfeed')
        self.conn = self.session.conn

    def rings(self, expect_at_least, timeout=10.0):
        """The notifications received until at least `expect_at_least` have come (or timeout)."""
        received = []
        while len(received) < expect_at_least:
            if not select.select([self.conn], [], [], timeout)[0]:
                break
            self.conn.poll()
            received += self.conn.notifies
            self.conn.notifies.clear()
        return received


def main():
    def body(holder):
        with TestDatabase('doorbell') as db:
            holder['db'] = db
            app = db.session('app')
            app.execute("CREATE TABLE a (id bigint PRIMARY KEY, mp_id int, note text, "
                        "created_at timestamptz NOT NULL DEFAULT now())")
            app.execute("SELECT pgfeed.attach('a', 'mp_id')")
            app.execute("INSERT INTO a (id, mp_id) SELECT g, g % 3 FROM generate_series(1, 6) g")
            listener = Listener(db)

            app.transaction(lambda s: (
                s.execute("INSERT INTO a (id, mp_id) VALUES (7, 1), (8, 2)"),
                s.execute("DELETE FROM a WHERE id = 1"),
                s.execute("SELECT pgfeed.mark_read('u1', ARRAY[2, 3])"),
                s.execute("SELECT pgfeed.mark_all_read('u2')")))
            rings = listener.rings(1)
            expect(len(rings) == 1, 'a transaction with inserts, a delete and marks rang %d times' % len(rings))
            expect(rings[0].channel == 'pgfeed' and rings[0].payload == '',
                   'the doorbell carries data: %r' % (rings[0].payload,))
            expect(not listener.rings(1, timeout=0.2), 'a second ring for one transaction')

            app.execute('BEGIN')
            app.execute("INSERT INTO a (id, mp_id) VALUES (100, 1)")
            app.execute("SELECT pgfeed.mark_read('u1', ARRAY[4])")
            app.execute('ROLLBACK')
            app.execute("UPDATE a SET note = 'unwatched' WHERE id = 2")
            app.execute("SELECT pgfeed.mark_read('u1', ARRAY[2])")  # already read: no change
            app.execute("SELECT pgfeed.mark_unread('u3', ARRAY[5])")  # never read: no change
            before = listener.session.value('SELECT count(*) FROM pgfeed.events')
            app.execute("SELECT pgfeed.mark_read('u1', ARRAY[5])")  # the witness
            rings = listener.rings(1)
            expect(len(rings) == 1, 'rollback, unwatched update or no-op marks rang: %d rings' % len(rings))
            after = listener.session.value('SELECT count(*) FROM pgfeed.events')
            expect(after == before + 1, 'no-op statements wrote events: %s -> %s' % (before, after))
            return '3 scenarios'

    return run_main(LABEL, body, watchdog_seconds=60)


if __name__ == '__main__':
    sys.exit(main())
