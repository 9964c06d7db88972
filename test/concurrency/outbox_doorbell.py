#!/usr/bin/env python3
"""NOTIFY pgfeed is a doorbell, rung by the numbering worker and never by the writing transactions.

NOTIFY takes a cluster-wide lock from pre-commit until the commit is durable, so a writer that
rang it would commit one at a time with every other. A listener session watches while app sessions
run transactions:
  1. a transaction with several inserts, a delete and marks is followed by a ring, from the
     numbering worker's process, not from the app's session, carrying no data (an empty payload);
  2. many transactions of several sessions that insert or mark: every ring comes from the worker,
     none from a writer, and they are fewer than the transactions;
  3. a rolled-back transaction, a statement that changes nothing pgfeed watches, and a mark that
     changes nothing write no event.
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
            app.flush()
            listener = Listener(db)

            writers = {app.pid}

            app.transaction(lambda s: (
                s.execute("INSERT INTO a (id, mp_id) VALUES (7, 1), (8, 2)"),
                s.execute("DELETE FROM a WHERE id = 1"),
                s.execute("SELECT pgfeed.mark_read('u1', ARRAY[2, 3])"),
                s.execute("SELECT pgfeed.mark_all_read('u2')")))
            rings = listener.rings(1)
            expect(rings, 'no ring after a transaction with inserts, a delete and marks')
            expect(all(r.channel == 'pgfeed' and r.payload == '' for r in rings),
                   'the doorbell carries data: %r' % ([r.payload for r in rings],))
            expect(rings[0].pid not in writers | {listener.session.pid},
                   'the ring came from pid %d, the writer or the listener' % rings[0].pid)

            sessions = [db.session('writer%d' % k) for k in range(5)]
            writers |= {s.pid for s in sessions}
            transactions = 0
            for i in range(20):
                for k, s in enumerate(sessions):
                    s.transaction(lambda tx, i=i, k=k: (
                        tx.execute("INSERT INTO a (id, mp_id) VALUES (%s, %s)", (1000 + i * 10 + k, k)),
                        tx.execute("SELECT pgfeed.mark_read(%s, ARRAY[2])", ('w%d_%d' % (k, i),))))
                    transactions += 1
            app.flush()
            rings = listener.rings(1) + listener.rings(10**6, timeout=0.3)
            from_writers = [r.pid for r in rings if r.pid in writers]
            expect(rings and not from_writers, '%d transactions: %d rings, %d of them from the writers %s'
                   % (transactions, len(rings), len(from_writers), sorted(set(from_writers))))
            expect(len(rings) < transactions, '%d transactions rang %d times: not once per round'
                   % (transactions, len(rings)))

            before = listener.session.value('SELECT count(*) FROM pgfeed.events')
            app.execute('BEGIN')
            app.execute("INSERT INTO a (id, mp_id) VALUES (100, 1)")
            app.execute("SELECT pgfeed.mark_read('u1', ARRAY[4])")
            app.execute('ROLLBACK')
            app.execute("UPDATE a SET note = 'unwatched' WHERE id = 2")
            app.execute("SELECT pgfeed.mark_read('u1', ARRAY[2])")  # already read: no change
            app.execute("SELECT pgfeed.mark_unread('u3', ARRAY[5])")  # never read: no change
            app.flush()
            after = listener.session.value('SELECT count(*) FROM pgfeed.events')
            expect(after == before, 'rollback, unwatched update or no-op marks wrote events: %s -> %s' % (before, after))
            return '3 scenarios'

    return run_main(LABEL, body, watchdog_seconds=60)


if __name__ == '__main__':
    sys.exit(main())
