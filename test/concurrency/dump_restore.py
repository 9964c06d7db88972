#!/usr/bin/env python3
"""pg_dump and pg_restore carry pgfeed's state: the restored database shows every user the same
feed, read state and follows, keeps the changes that were still waiting for numbering (numbered
after the restore), and numbers new rows above every restored position.
"""
import os
import subprocess
import sys
import tempfile

from _harness import TestDatabase, TestFailure, run_main

LABEL = 'dump_restore.py'
USERS = ['heavy', 'light', 'follower']


def expect(condition, message):
    if not condition:
        raise TestFailure(message)


def pg_bin(tool):
    bindir = subprocess.run(['pg_config', '--bindir'], check=True, capture_output=True, text=True).stdout.strip()
    return os.path.join(bindir, tool)


def state(s):
    """Everything a user can see, per user and feed."""
    out = {}
    for user in USERS:
        for feed in ('all', 'mp_id:1', 'following'):
            rows, before = [], None
            while True:
                page = s.all('SELECT position, activity_id, topic, is_read FROM pgfeed.page(%s, %s, 1000, %s)',
                             (user, feed, before))
                rows += [tuple(r) for r in page]
                if len(page) < 1000:
                    break
                before = page[-1][0]
            out[(user, feed)] = (rows, s.value('SELECT pgfeed.unread_count(%s, %s)', (user, feed)))
        out[(user, 'follows')] = [r[0] for r in s.all('SELECT * FROM pgfeed.following(%s)', (user,))]
    return out


def main():
    def body(holder):
        with TestDatabase('dump') as source, TestDatabase('restored') as target:
            holder['db'] = source
            s = source.session('app')
            s.execute('CREATE TABLE app (id bigserial PRIMARY KEY, mp_id int, kind text, '
                      'created_at timestamptz NOT NULL DEFAULT now())')
            s.execute("SELECT pgfeed.attach('app', 'mp_id', ARRAY['kind'])")
            s.execute("INSERT INTO app (mp_id, kind) SELECT g % 5, 'vote' FROM generate_series(1, 3000) g")
            s.flush()
            s.execute("SELECT pgfeed.mark_read('heavy', ARRAY(SELECT generate_series(1000, 2500))::bigint[])")
            s.execute("SELECT pgfeed.mark_all_read('heavy', 'all', 900)")
            s.execute("SELECT pgfeed.mark_unread('heavy', ARRAY[10, 1024, 2048])")
            s.execute("SELECT pgfeed.mark_read('light', ARRAY[5, 1023, 1025, 2999])")
            s.execute("SELECT pgfeed.follow('follower', 'mp_id:1')")
            s.execute("SELECT pgfeed.mark_all_read('follower', 'following')")
            s.execute('DELETE FROM app WHERE id IN (7, 1500)')
            s.flush()
            before = state(s)
            top = s.value('SELECT last_position FROM pgfeed.sequencer')
            # Left waiting for numbering at dump time: a transaction still open when the dump's
            # snapshot is taken does not count, a committed one does.
            s.execute('BEGIN')
            s.execute("INSERT INTO app (mp_id, kind) VALUES (3, 'pending at dump')")
            s.execute("SELECT pgfeed.mark_read('light', ARRAY[currval('app_id_seq')])")
            s.execute('COMMIT')
            waiting = s.value("SELECT id FROM app WHERE kind = 'pending at dump'")
            # Stop the worker from taking it before the dump: a paused numbering step is what a
            # dump taken under load meets.
            s.execute('BEGIN')
            s.execute('SELECT FROM pgfeed.sequencer FOR UPDATE')
            with tempfile.TemporaryDirectory() as tmp:
                dump = os.path.join(tmp, 'db.dump')
                subprocess.run([pg_bin('pg_dump'), '-Fc', '-f', dump, source.name], check=True,
                               capture_output=True)
                s.execute('ROLLBACK')
                t = target.session('restorer')
                t.execute('DROP EXTENSION pgfeed')
                t.execute('DROP SCHEMA pgfeed')
                t.close()
                done = subprocess.run([pg_bin('pg_restore'), '-d', target.name, dump], capture_output=True, text=True)
                expect(done.returncode == 0, 'pg_restore failed: %s' % done.stderr.strip()[:2000])
            r = target.session('after')
            r.flush()
            after = state(r)
            for key in before:
                got = after[key]
                if key[1] == 'all':  # the item pending at dump time is there now, at top + 1
                    rows, count = got
                    got = ([row for row in rows if row[0] <= top], count - (0 if key[0] == 'light' else 1))
                expect(got == before[key], 'restored %s differs: %s ... -> %s ...'
                       % (key, str(before[key])[:300], str(got)[:300]))
            new_pos = r.value("SELECT position FROM pgfeed.page('light', 'all', 1)")
            expect(new_pos == top + 1, 'the change pending at dump time was numbered at %s, expected %d'
                   % (new_pos, top + 1))
            expect(r.value('SELECT pgfeed.is_read(%s, %s)', ('light', waiting)) is True,
                   'the mark recorded before numbering was lost in the restore')
            r.execute("INSERT INTO app (mp_id, kind) VALUES (2, 'after restore')")
            r.flush()
            expect(r.value("SELECT position FROM pgfeed.page('light', 'all', 1)") == top + 2,
                   'a row inserted after the restore is not numbered above the restored positions')
            return '%d positions, %d users restored' % (top, len(USERS))

    return run_main(LABEL, body, watchdog_seconds=120)


if __name__ == '__main__':
    sys.exit(main())
