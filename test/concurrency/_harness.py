"""Shared helpers of the pgfeed concurrency tests; not a test itself.

test/run-sql-tests.sh runs every test/concurrency/*.py, so running this file directly only says
that it has nothing to check. The tests import it: `from _harness import ...`.

Connections take PGHOST, PGPORT and PGUSER from the environment, like psql. Each test works in a
database of its own, created by TestDatabase and dropped (WITH (FORCE)) when it is left, also on
failure.
"""
import os
import random
import sys
import threading
import time
import traceback


def _import_psycopg2():
    try:
        import psycopg2
        import psycopg2.errorcodes  # noqa: F401
        return psycopg2
    except ImportError:
        # Debian's python3-psycopg2 serves the system interpreter only; a python3 found earlier on
        # PATH (pyenv, a virtualenv) does not see it. Run the test under the system interpreter.
        system = '/usr/bin/python3'
        if (os.environ.get('PGFEED_TEST_REEXEC') or not os.path.exists(system)
                or os.path.realpath(sys.executable) == os.path.realpath(system)):
            sys.stderr.write('psycopg2 is missing: install python3-psycopg2 (test/install-deps.sh)\n')
            sys.exit(2)
        os.environ['PGFEED_TEST_REEXEC'] = '1'
        sys.stdout.flush()
        sys.stderr.flush()
        os.execv(system, [system] + sys.argv)


psycopg2 = _import_psycopg2()

SERIALIZATION_FAILURE = '40001'
DEADLOCK_DETECTED = '40P01'

# Every session of the tests: a lock wait or statement this long means a hang, not slowness.
SESSION_OPTIONS = '-c lock_timeout=20s -c statement_timeout=40s -c idle_in_transaction_session_timeout=60s'


class TestFailure(Exception):
    """An invariant does not hold; the message says which and how."""


def sqlstate(error):
    return getattr(error, 'pgcode', None)


def is_retryable(error, codes=(SERIALIZATION_FAILURE,)):
    return isinstance(error, psycopg2.Error) and sqlstate(error) in codes


def seed_from(argv, default):
    """The seed: the first argument, else PGFEED_SEED, else `default` (CI runs the same seed;
    PGFEED_SEED=random picks a fresh one, printed by the caller)."""
    text = argv[1] if len(argv) > 1 else os.environ.get('PGFEED_SEED') or str(default)
    if text == 'random':
        return random.SystemRandom().randrange(1, 2**31)
    return int(text)


def wait_until(predicate, what, timeout=15.0, interval=0.005):
    """Polls `predicate` until it returns a true value (which is returned) or `timeout` passes."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TestFailure('timed out after %.0f s waiting for %s' % (timeout, what))
        time.sleep(interval)


class Session:
    """One autocommit connection; transactions are explicit BEGIN ... COMMIT statements."""

    def __init__(self, dbname, name):
        self.name = name
        self.conn = psycopg2.connect(dbname=dbname, application_name=name, options=SESSION_OPTIONS)
        self.conn.autocommit = True
        self.cur = self.conn.cursor()
        self.cur.execute('SELECT pg_backend_pid()')
        self.pid = self.cur.fetchone()[0]

    def execute(self, sql, params=None):
        self.cur.execute(sql, params)
        return self.cur

    def all(self, sql, params=None):
        return self.execute(sql, params).fetchall()

    def one(self, sql, params=None):
        return self.execute(sql, params).fetchone()

    def value(self, sql, params=None):
        row = self.one(sql, params)
        return None if row is None else row[0]

    def flush(self):
        """Waits until everything committed so far is numbered (items appear after commit)."""
        self.execute('CALL pgfeed.flush()')

    def rollback_quietly(self):
        try:
            self.cur.execute('ROLLBACK')
        except psycopg2.Error:
            pass

    def transaction(self, body, isolation='READ COMMITTED', retry_codes=(SERIALIZATION_FAILURE,),
                    max_attempts=200, on_retry=None):
        """Runs body(self) in BEGIN ISOLATION LEVEL isolation ... COMMIT, again from the start on
        errors whose SQLSTATE is in retry_codes; other errors roll back and propagate."""
        for attempt in range(1, max_attempts + 1):
            try:
                self.execute('BEGIN ISOLATION LEVEL ' + isolation)
                result = body(self)
                self.execute('COMMIT')
                return result
            except psycopg2.Error as e:
                self.rollback_quietly()
                if sqlstate(e) in retry_codes and attempt < max_attempts:
                    if on_retry:
                        on_retry(e)
                    continue
                raise
            except BaseException:
                self.rollback_quietly()
                raise
        raise AssertionError('unreachable')

    def close(self):
        try:
            self.conn.close()
        except psycopg2.Error:
            pass


class Background:
    """Runs fn() in a thread: for a statement that is expected to block on a lock."""

    def __init__(self, fn, name='background'):
        self.result = None
        self.error = None
        self.thread = threading.Thread(target=self._run, args=(fn,), name=name, daemon=True)
        self.thread.start()

    def _run(self, fn):
        try:
            self.result = fn()
        except BaseException as e:  # handed to join()
            self.error = e

    def done(self):
        return not self.thread.is_alive()

    def join(self, what, timeout=15.0):
        self.thread.join(timeout)
        if self.thread.is_alive():
            raise TestFailure('timed out after %.0f s waiting for %s' % (timeout, what))
        if self.error:
            raise self.error
        return self.result


class TestDatabase:
    """A database of the test's own with pgfeed installed; dropped on exit."""

    def __init__(self, prefix):
        self.name = 'pgfeed_%s_%d_%s' % (prefix, os.getpid(), '%06x' % random.SystemRandom().randrange(16**6))
        self.sessions = []
        self.lock = threading.Lock()
        self.dropped = False

    def __enter__(self):
        admin = psycopg2.connect(dbname=os.environ.get('PGDATABASE', 'postgres'), options=SESSION_OPTIONS)
        admin.autocommit = True
        with admin.cursor() as cur:
            cur.execute('CREATE DATABASE "%s"' % self.name)
        admin.close()
        setup = self.session('setup')
        setup.execute('CREATE EXTENSION pgfeed')
        return self

    def session(self, name):
        s = Session(self.name, name)
        with self.lock:
            self.sessions.append(s)
        return s

    def drop(self):
        with self.lock:
            if self.dropped:
                return
            self.dropped = True
            sessions = list(self.sessions)
        for s in sessions:
            s.close()
        admin = psycopg2.connect(dbname=os.environ.get('PGDATABASE', 'postgres'), options=SESSION_OPTIONS)
        admin.autocommit = True
        with admin.cursor() as cur:
            cur.execute('DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % self.name)
        admin.close()

    def __exit__(self, *exc):
        self.drop()
        return False


def lock_wait_of(monitor, pid):
    """The lock wait event of backend `pid`, or None while it is not waiting on a lock."""
    row = monitor.one("SELECT wait_event_type, wait_event FROM pg_stat_activity WHERE pid = %s", (pid,))
    return row[1] if row and row[0] == 'Lock' else None


def wait_blocked(monitor, session, what, timeout=15.0):
    """Waits until `session`'s backend waits on a heavyweight lock (pg_stat_activity)."""
    return wait_until(lambda: lock_wait_of(monitor, session.pid), what + ' to block on a lock', timeout)


def start_watchdog(seconds, label, cleanup=None):
    """Ends the process if the test hangs: prints the threads' stacks, drops the database."""

    def fire():
        sys.stderr.write('%s: WATCHDOG: still running after %d s, aborting\n' % (label, seconds))
        for thread_id, frame in sys._current_frames().items():
            sys.stderr.write('--- thread %s\n%s' % (thread_id, ''.join(traceback.format_stack(frame))))
        try:
            if cleanup:
                cleanup()
        finally:
            sys.stderr.flush()
            sys.stdout.flush()
            os._exit(3)

    timer = threading.Timer(seconds, fire)
    timer.daemon = True
    timer.start()
    return timer


def run_main(label, body, watchdog_seconds=150, on_failure=None):
    """Runs body(holder) and turns the outcome into the exit status. body returns the summary text;
    a TestFailure or any other error fails the test. Details come first, and the last line printed
    is always the one-line summary: '<label>: OK (...) ...' or '<label>: FAIL (...) ...'.
    holder['db'] is the TestDatabase the watchdog drops if the test hangs; on_failure() may return
    more details to print (seed, recent operations)."""
    started = time.monotonic()
    holder = {}
    start_watchdog(watchdog_seconds, label, cleanup=lambda: holder['db'].drop() if 'db' in holder else None)
    try:
        summary = body(holder)
    except Exception as e:
        if isinstance(e, TestFailure):
            lines = str(e).splitlines() or ['(no message)']
        else:
            traceback.print_exc()
            lines = ['unexpected %s: %s' % (type(e).__name__, str(e).strip().splitlines()[0] if str(e).strip() else '')]
        if len(lines) > 1:
            print('%s: %s' % (label, '\n'.join(lines)))
        extra = on_failure() if on_failure else None
        if extra:
            print(extra)
        print('%s: FAIL (%.1f s): %s' % (label, time.monotonic() - started, lines[0]), flush=True)
        return 1
    print('%s: OK (%.1f s) %s' % (label, time.monotonic() - started, summary), flush=True)
    return 0


if __name__ == '__main__':
    print('_harness.py: helper module of the concurrency tests, nothing to check')
