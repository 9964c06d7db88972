#!/usr/bin/env python3
"""A hot standby serves the numbered feed, and numbers nothing itself.

A streaming replica of the test cluster (pg_basebackup -R, its own socket directory) is started:
  1. no numbering worker runs there, though pgfeed is preloaded;
  2. rows committed and numbered on the primary reach the standby's pages and counts;
  3. rows committed on the primary but not numbered yet (the primary's numbering held back) are not
     in the standby's feed, and arrive once the primary numbers them: the standby always shows a
     numbered, gap-free prefix.
"""
import os
import shutil
import subprocess
import sys
import tempfile

from _harness import TestDatabase, TestFailure, psycopg2, run_main, wait_until

LABEL = 'hot_standby.py'


def expect(condition, message):
    if not condition:
        raise TestFailure(message)


def as_postgres(cmd):
    """initdb, pg_ctl and pg_basebackup refuse root: run them as the postgres system user then."""
    return (['runuser', '-u', 'postgres', '--'] + cmd) if os.getuid() == 0 else cmd


def pg_tool(name):
    bindir = subprocess.run(['pg_config', '--bindir'], check=True, capture_output=True, text=True).stdout.strip()
    return os.path.join(bindir, name)


class Standby:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix='pgfeed-standby.')
        os.chmod(self.dir, 0o755)
        if os.getuid() == 0:
            shutil.chown(self.dir, 'postgres', 'postgres')
        self.data = os.path.join(self.dir, 'data')
        self.started = False

    def start(self):
        subprocess.run(as_postgres([pg_tool('pg_basebackup'), '-D', self.data, '-R', '-X', 'stream', '-c', 'fast',
                                    '-h', os.environ['PGHOST'], '-p', os.environ.get('PGPORT', '5432'),
                                    '-U', os.environ.get('PGUSER', 'postgres')]),
                       check=True, capture_output=True)
        with open(os.path.join(self.data, 'postgresql.auto.conf'), 'a') as conf:
            conf.write("unix_socket_directories = '%s'\nport = 5433\nhot_standby = on\n" % self.dir)
        subprocess.run(as_postgres([pg_tool('pg_ctl'), '-D', self.data, '-l', os.path.join(self.dir, 'server.log'),
                                    '-w', '-t', '60', 'start']), check=True, capture_output=True)
        self.started = True

    def connect(self, dbname):
        conn = psycopg2.connect(host=self.dir, port=5433, dbname=dbname, user=os.environ.get('PGUSER', 'postgres'))
        conn.autocommit = True
        return conn

    def stop(self):
        if self.started:
            subprocess.run(as_postgres([pg_tool('pg_ctl'), '-D', self.data, '-m', 'fast', '-w', 'stop']),
                           capture_output=True)
        shutil.rmtree(self.dir, ignore_errors=True)


def value(conn, sql, params=None):
    with conn.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchone()[0]


def main():
    def body(holder):
        standby = Standby()
        try:
            with TestDatabase('standby') as db:
                holder['db'] = db
                app = db.session('app')
                app.execute('CREATE TABLE app (id bigserial PRIMARY KEY, mp_id int, '
                            'created_at timestamptz NOT NULL DEFAULT now())')
                app.execute("SELECT pgfeed.attach('app', 'mp_id')")
                app.execute('INSERT INTO app (mp_id) SELECT g % 3 FROM generate_series(1, 500) g')
                app.flush()
                app.execute("SELECT pgfeed.mark_read('u', ARRAY[1, 2, 3])")
                standby.start()

                def connected():
                    try:
                        return standby.connect(db.name)
                    except psycopg2.OperationalError:
                        return None
                replica = wait_until(connected, 'the standby to accept sessions', timeout=60, interval=0.1)
                expect(value(replica, 'SELECT pg_is_in_recovery()'), '1: the standby is not in recovery')
                expect(value(replica, "SHOW shared_preload_libraries").startswith('pgfeed'),
                       '1: the standby does not preload pgfeed')

                def unread_on_standby():
                    return value(replica, "SELECT pgfeed.unread_count('u')")
                wait_until(lambda: unread_on_standby() == 497, '2: the standby to show the numbered items')
                expect(value(replica, "SELECT count(*) FROM pgfeed.page('u', 'all', 1000, unread_only => true)") == 497,
                       '2: the standby\'s unread page disagrees with its count')

                # Hold the primary's numbering: commit rows that wait in pgfeed.pending meanwhile.
                holder_session = db.session('hold')
                holder_session.execute('BEGIN')
                holder_session.execute('SELECT FROM pgfeed.sequencer FOR UPDATE')
                app.execute('INSERT INTO app (mp_id) SELECT 1 FROM generate_series(1, 20)')
                wait_until(lambda: value(replica, 'SELECT count(*) FROM pgfeed.pending') == 20,
                           '3: the committed, not numbered rows to reach the standby')
                expect(unread_on_standby() == 497, '3: the standby shows rows the primary has not numbered')
                expect(value(replica, "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'pgfeed numbering'")
                       == 0, '1: a numbering worker runs on the standby')
                holder_session.execute('ROLLBACK')
                wait_until(lambda: unread_on_standby() == 517, '3: the standby to show them once the primary numbered')
                top, count = value(replica, "SELECT max(position) FROM pgfeed.items"), \
                    value(replica, "SELECT count(*) FROM pgfeed.items")
                expect(top == count, '3: the standby\'s positions are not a gap-free prefix: %s items up to %s'
                       % (count, top))
                replica.close()
                return '3 scenarios'
        finally:
            standby.stop()

    return run_main(LABEL, body, watchdog_seconds=120)


if __name__ == '__main__':
    sys.exit(main())
