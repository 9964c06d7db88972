"""Servers of the notifier tests: redis-server, pgfeed-notifier instances, PostgreSQL restarts, and
feed databases. Not a test itself; the tests import it: `from _servers import ...`.

PostgreSQL is the throwaway cluster test/run-notifier-tests.sh started (PGHOST is its directory,
the data directory is "$PGHOST/data"). Every redis-server and notifier started here is registered
and stopped when the test process ends, also on failure, a signal or the watchdog. Logs and Redis
data live in a run directory that is removed after a passing run and kept (its path printed) after
a failing one.
"""
import atexit
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time


def _import_clients():
    try:
        import psycopg2  # noqa: F401
        import redis  # noqa: F401
    except ImportError:
        # Debian's python3-psycopg2 and python3-redis serve the system interpreter only; a python3
        # found earlier on PATH (pyenv, a virtualenv) does not see them.
        system = '/usr/bin/python3'
        if (os.environ.get('PGFEED_TEST_REEXEC') or not os.path.exists(system)
                or os.path.realpath(sys.executable) == os.path.realpath(system)):
            sys.stderr.write('psycopg2 or redis is missing: install python3-psycopg2 and python3-redis '
                             '(test/install-deps.sh)\n')
            sys.exit(2)
        os.environ['PGFEED_TEST_REEXEC'] = '1'
        sys.stdout.flush()
        sys.stderr.flush()
        os.execv(system, [system] + sys.argv)


_import_clients()

import psycopg2  # noqa: E402
import redis  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
sys.path.insert(0, os.path.join(ROOT, 'test', 'concurrency'))

from _harness import SESSION_OPTIONS, TestDatabase, TestFailure, seed_from, wait_until  # noqa: E402,F401

NOTIFIER_BIN = os.environ.get('PGFEED_NOTIFIER', os.path.join(ROOT, 'build', 'notifier', 'pgfeed-notifier'))
STREAM = 'pgfeed:events'


def pg_bindir():
    try:
        return subprocess.run(['pg_config', '--bindir'], check=True, capture_output=True, text=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return '/usr/lib/postgresql/15/bin'


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def process_gone(proc):
    return proc.poll() is not None


# -- the run directory and every process started, stopped at exit ------------------------------------

class Run:
    """The run directory and the registry of started processes."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix='pgfeed-notifier-logs.')
        self.failed = False
        self.lock = threading.Lock()
        self.stoppables = []

    def register(self, stoppable):
        with self.lock:
            self.stoppables.append(stoppable)

    def path(self, *parts):
        path = os.path.join(self.dir, *parts)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        return path

    def stop_all(self):
        with self.lock:
            stoppables = list(self.stoppables)
        for s in reversed(stoppables):
            try:
                s.stop()
            except Exception as e:  # keep stopping the others
                sys.stderr.write('stopping %s: %s\n' % (s, e))

    def finish(self):
        self.stop_all()
        if self.failed:
            sys.stderr.write('logs and data kept in %s\n' % self.dir)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)


RUN = Run()
atexit.register(RUN.finish)


def _exit_on_signal(signum, _frame):
    # atexit runs on SystemExit, not on a signal's default action.
    RUN.failed = True
    raise SystemExit(128 + signum)


signal.signal(signal.SIGTERM, _exit_on_signal)
signal.signal(signal.SIGHUP, _exit_on_signal)


def _terminate(proc, sig, timeout):
    """Sends `sig` and waits for the exit; SIGKILL when it does not come in time."""
    if process_gone(proc):
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


# -- redis-server --------------------------------------------------------------------------------------

class RedisServer:
    """A redis-server on a loopback port with its data in a directory of its own, AOF on
    (appendfsync everysec); restarts on the same port and directory, so the data survives."""

    def __init__(self, name='redis'):
        self.name = name
        self.dir = os.path.dirname(RUN.path(name, 'redis.conf'))
        self.port = free_port()
        self.proc = None
        self.log_path = os.path.join(self.dir, 'redis.log')
        with open(os.path.join(self.dir, 'redis.conf'), 'w') as f:
            f.write('bind 127.0.0.1\nport %d\ndir %s\nlogfile %s\n'
                    'appendonly yes\nappendfsync everysec\nsave ""\ndaemonize no\n'
                    % (self.port, self.dir, self.log_path))
        RUN.register(self)

    def __str__(self):
        return 'redis-server :%d' % self.port

    def client(self, timeout=5.0):
        return redis.Redis(host='127.0.0.1', port=self.port, decode_responses=True,
                           socket_timeout=timeout, socket_connect_timeout=timeout)

    def _ready(self):
        if process_gone(self.proc):
            raise TestFailure('%s exited with %s at start; %s' % (self, self.proc.returncode, self.log_tail()))
        try:
            # PING answers while the AOF is still loading; INFO's loading flag says when it is done.
            return self.client(1.0).info('persistence').get('loading') == 0
        except redis.RedisError:
            return False

    def start(self):
        self.proc = subprocess.Popen(['redis-server', os.path.join(self.dir, 'redis.conf')],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        wait_until(self._ready, '%s to accept commands' % self, timeout=20, interval=0.02)
        return self

    def stop(self, sig=signal.SIGTERM):
        """SIGTERM: redis saves and fsyncs its AOF and exits; SIGKILL: what was written to the AOF
        file survives (the page cache outlives the process), what was still in memory does not."""
        if self.proc is not None:
            _terminate(self.proc, sig, timeout=20)

    def restart(self, sig=signal.SIGTERM, downtime=0.0):
        self.stop(sig)
        time.sleep(downtime)  # clients see the server down for this long: the point of the fault
        return self.start()

    def version(self):
        return self.client().info('server')['redis_version']

    def log_tail(self, lines=20):
        return tail(self.log_path, lines)


def tail(path, lines):
    try:
        with open(path, errors='replace') as f:
            return ''.join(f.readlines()[-lines:])
    except OSError as e:
        return '(%s)' % e


# -- pgfeed-notifier ------------------------------------------------------------------------------------

def notifier_available():
    return os.access(NOTIFIER_BIN, os.X_OK)


def conninfo(dbname, application_name):
    return 'host=%s port=%s dbname=%s user=%s application_name=%s' % (
        os.environ.get('PGHOST', '/var/run/postgresql'), os.environ.get('PGPORT', '5432'), dbname,
        os.environ.get('PGUSER', 'postgres'), application_name)


class Notifier:
    """One pgfeed-notifier process: stderr and stdout to <run dir>/<name>.log (appended across
    restarts). Its PostgreSQL connections carry application_name=<name>, which tells which
    instance holds the bridge lock (bridge_holder)."""

    def __init__(self, name, dbname, redis_server, extra_args=()):
        self.name = name
        self.args = [NOTIFIER_BIN,
                     '--postgres.conninfo=' + conninfo(dbname, name),
                     '--redis.host=127.0.0.1', '--redis.port=%d' % redis_server.port,
                     '--log.level=info'] + list(extra_args)
        self.log_path = RUN.path('%s.log' % name)
        self.proc = None
        self.starts = 0
        RUN.register(self)

    def __str__(self):
        return 'notifier %s (pid %s)' % (self.name, self.proc.pid if self.proc else '-')

    def start(self):
        with open(self.log_path, 'a') as log:
            log.write('--- test harness: start %d: %s\n' % (self.starts + 1, ' '.join(self.args)))
            log.flush()
            # Only the flags configure it: a PGFEED_<SECTION>_<KEY> variable of the caller's
            # environment would set the keys they leave alone.
            env = {k: v for k, v in os.environ.items() if not k.startswith('PGFEED_')}
            self.proc = subprocess.Popen(self.args, stdout=log, stderr=log, stdin=subprocess.DEVNULL, env=env)
        self.starts += 1
        return self

    def alive(self):
        return self.proc is not None and not process_gone(self.proc)

    def kill(self):
        """SIGKILL: dies at whatever moment it is in, nothing flushed."""
        if self.alive():
            self.proc.kill()
            self.proc.wait(10)

    def stop(self, timeout=10.0):
        """SIGTERM; SIGKILL (and a note in the log) when it does not exit within `timeout`."""
        if self.proc is None or process_gone(self.proc):
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with open(self.log_path, 'a') as log:
                log.write('--- test harness: no exit %.0f s after SIGTERM, SIGKILL\n' % timeout)
            self.proc.kill()
            self.proc.wait(10)

    def exit_status(self):
        return None if self.proc is None else self.proc.poll()

    def log_tail(self, lines=30):
        return tail(self.log_path, lines)


# -- PostgreSQL ------------------------------------------------------------------------------------------

def restart_postgres(mode='fast'):
    """pg_ctl restart of the test cluster ("$PGHOST/data"); returns once it accepts connections."""
    cluster = os.environ['PGHOST']
    cmd = [os.path.join(pg_bindir(), 'pg_ctl'), '-D', os.path.join(cluster, 'data'), '-m', mode,
           '-l', os.path.join(cluster, 'server.log'), '-w', '-t', '60', 'restart']
    if os.getuid() == 0:
        cmd = ['runuser', '-u', 'postgres', '--'] + cmd  # pg_ctl refuses root
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise TestFailure('pg_ctl restart failed (%d): %s %s' % (done.returncode, done.stdout, done.stderr))


def connect(dbname, application_name, autocommit=True):
    conn = psycopg2.connect(dbname=dbname, application_name=application_name, options=SESSION_OPTIONS)
    conn.autocommit = autocommit
    return conn


def query(dbname, sql, params=None):
    """One statement on a fresh connection (survives server restarts between calls)."""
    conn = connect(dbname, 'test-query')
    try:
        with conn.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchall() if cur.description else None
    finally:
        conn.close()


def available_pgfeed_versions():
    return [r[0] for r in query(os.environ.get('PGDATABASE', 'postgres'),
                                "SELECT version FROM pg_available_extension_versions WHERE name = 'pgfeed' ORDER BY 1")]


FEED_SCHEMA = """
CREATE TABLE activities (
    id         bigserial PRIMARY KEY,
    mp_id      int,
    kind       text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
SELECT pgfeed.attach('public.activities', topic_column => 'mp_id', payload_columns => ARRAY['kind'],
                     id_column => 'id', created_column => 'created_at');
"""


class FeedDatabase(TestDatabase):
    """A database of the test's own with pgfeed, `activities` attached (topic mp_id, payload kind)
    and `extra_sql` run after; dropped on exit."""

    def __init__(self, prefix, extra_sql=''):
        super().__init__(prefix)
        self.extra_sql = extra_sql

    def __enter__(self):
        super().__enter__()
        self.session('schema').execute(FEED_SCHEMA + self.extra_sql)
        return self


def bridge_holder(dbname):
    """application_name of the session that holds an advisory lock in `dbname` (the bridge
    lock), or None while nobody does."""
    rows = query(dbname, """
        SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
         WHERE l.locktype = 'advisory' AND l.granted
           AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())""")
    names = sorted({r[0] for r in rows})
    if len(names) > 1:
        raise TestFailure('advisory locks held by several sessions at once: %s' % names)
    return names[0] if names else None


def outbox_event_ids(dbname):
    """The event_ids in the extension's outbox (pgfeed.events): committed and not yet pruned."""
    return [r[0] for r in query(dbname, 'SELECT event_id FROM pgfeed.events ORDER BY event_id')]


# -- the stream -----------------------------------------------------------------------------------------

class StreamEvent:
    """One entry of pgfeed:events, its JSON data decoded."""

    __slots__ = ('index', 'entry_id', 'fields', 'data')

    def __init__(self, index, entry_id, fields):
        self.index = index
        self.entry_id = entry_id
        self.fields = fields
        try:
            self.data = json.loads(fields.get('data', ''))
        except ValueError:
            self.data = None

    def __str__(self):
        return 'stream entry #%d %s %s' % (self.index, self.entry_id, self.fields)


def read_stream(client, stream=STREAM, batch=10000):
    """Every entry of the stream, oldest first."""
    events, start = [], '-'
    while True:
        chunk = client.xrange(stream, min=start, max='+', count=batch)
        for entry_id, fields in chunk:
            events.append(StreamEvent(len(events), entry_id, fields))
        if len(chunk) < batch:
            return events
        start = '(' + chunk[-1][0]  # exclusive: after the last entry read


if __name__ == '__main__':
    print('_servers.py: helper module of the notifier tests, nothing to check')
