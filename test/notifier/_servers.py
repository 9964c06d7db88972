"""Servers of the notifier tests: redis-server, pgfeed-notifier instances, PostgreSQL restarts, and
feed databases; for the SSE gateway a Gateway (a notifier with its HTTP port and workers), HS256
token minting, raw-socket HTTP and SSE clients, and a Prometheus text parser. Not a test itself;
the tests import it: `from _servers import ...`.

PostgreSQL is the throwaway cluster test/run-notifier-tests.sh started (PGHOST is its directory,
the data directory is "$PGHOST/data"). Every redis-server and notifier started here is registered
and stopped when the test process ends, also on failure, a signal or the watchdog. Logs and Redis
data live in a run directory that is removed after a passing run and kept (its path printed) after
a failing one.
"""
import atexit
import base64
import codecs
import fnmatch
import hashlib
import hmac
import json
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback


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

    def __init__(self, name, dbname, redis_server, extra_args=(), nofile=None):
        self.name = name
        self.nofile = nofile  # RLIMIT_NOFILE of the processes, when not the caller's
        self.args = [NOTIFIER_BIN,
                     '--postgres.conninfo=' + conninfo(dbname, name),
                     '--redis.host=127.0.0.1', '--redis.port=%d' % redis_server.port,
                     # a free port, so instances never share one (SO_REUSEPORT would let them)
                     '--log.level=info', '--http.port=0'] + list(extra_args)
        self.log_path = RUN.path('%s.log' % name)
        self.proc = None
        self.starts = 0
        self.log_offset = 0  # where the log of the latest start begins
        RUN.register(self)

    def __str__(self):
        return 'notifier %s (pid %s)' % (self.name, self.proc.pid if self.proc else '-')

    def start(self):
        with open(self.log_path, 'a') as log:
            self.log_offset = log.tell()
            log.write('--- test harness: start %d: %s\n' % (self.starts + 1, ' '.join(self.args)))
            log.flush()
            # Only the flags configure it: a PGFEED_<SECTION>_<KEY> variable of the caller's
            # environment would set the keys they leave alone.
            env = {k: v for k, v in os.environ.items() if not k.startswith('PGFEED_')}
            # A session of its own: kill() takes the supervisor and its workers down at once.
            limit = self.nofile
            self.proc = subprocess.Popen(
                self.args, stdout=log, stderr=log, stdin=subprocess.DEVNULL, env=env, start_new_session=True,
                preexec_fn=(lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))) if limit else None)
        self.starts += 1
        return self

    def alive(self):
        return self.proc is not None and not process_gone(self.proc)

    def kill(self):
        """SIGKILL of the supervisor and every worker: they die at whatever moment they are in,
        the bridge among them, nothing flushed."""
        if self.alive():
            os.killpg(self.proc.pid, signal.SIGKILL)
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
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def exit_status(self):
        return None if self.proc is None else self.proc.poll()

    def log_tail(self, lines=30):
        return tail(self.log_path, lines)


# -- PostgreSQL ------------------------------------------------------------------------------------------

def pg_ctl(action, mode='fast'):
    """pg_ctl start, stop or restart of the test cluster ("$PGHOST/data"); returns once it is done
    (a start or restart: once the server accepts connections)."""
    cluster = os.environ['PGHOST']
    cmd = [os.path.join(pg_bindir(), 'pg_ctl'), '-D', os.path.join(cluster, 'data'), '-m', mode,
           '-l', os.path.join(cluster, 'server.log'), '-w', '-t', '60', action]
    if os.getuid() == 0:
        cmd = ['runuser', '-u', 'postgres', '--'] + cmd  # pg_ctl refuses root
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise TestFailure('pg_ctl %s failed (%d): %s %s' % (action, done.returncode, done.stdout, done.stderr))


def restart_postgres(mode='fast'):
    pg_ctl('restart', mode)


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


# -- the SSE gateway: tokens, the HTTP side of a notifier, SSE clients --------------------------------------

SECRET = 'pgfeed-test-secret'
ID_RE = re.compile(r'^(0|[1-9][0-9]*)-(0|[1-9][0-9]*)$')


def stream_id_key(entry_id):
    """A stream id "<ms>-<seq>" as a tuple that sorts as Redis sorts ids."""
    ms, seq = entry_id.split('-')
    return int(ms), int(seq)


def _b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b'=').decode('ascii')


def mint_token(sub='alice', topics=('*',), secret=SECRET, expires_in=3600, alg='HS256', claims=None,
               drop=()):
    """A JWT as an app server would mint it: HS256 over header.payload with `secret`. `alg` may be
    'none' (no signature) or HS384/HS512 (signed with that hash) to forge bad ones; `claims`
    overrides or adds claims, `drop` removes some (e.g. 'sub')."""
    payload = {'sub': sub, 'exp': int(time.time()) + expires_in}
    if topics is not None:
        payload['topics'] = list(topics)
    payload.update(claims or {})
    for name in drop:
        payload.pop(name, None)
    signing_input = '%s.%s' % (_b64url(json.dumps({'alg': alg, 'typ': 'JWT'}).encode()),
                               _b64url(json.dumps(payload).encode()))
    if alg == 'none':
        return signing_input + '.'
    digest = {'HS256': hashlib.sha256, 'HS384': hashlib.sha384, 'HS512': hashlib.sha512}[alg]
    signature = hmac.new(secret.encode(), signing_input.encode(), digest).digest()
    return signing_input + '.' + _b64url(signature)


def visible(entry, user, patterns):
    """Whether a connection of `user` following topic `patterns` may see the stream entry
    `entry` (a StreamEvent): activity events by topic (fnmatch, only `*` special), read events
    only to their user."""
    kind = entry.fields.get('kind')
    if kind == 'activity':
        topic = entry.fields.get('topic')
        return topic is not None and any(fnmatch.fnmatchcase(topic, p) for p in patterns)
    if kind == 'read':
        return entry.fields.get('user') == user
    return False


def expected_events(client, user, patterns, after=None):
    """What a connection of `user` on `patterns` that resumed after stream id `after` must
    receive: [(id, kind, data)] in stream order, from XRANGE, the ground truth."""
    start = stream_id_key(after) if after else (-1, -1)
    return [(e.entry_id, e.fields.get('kind'), e.fields.get('data')) for e in read_stream(client)
            if stream_id_key(e.entry_id) > start and visible(e, user, patterns)]


def compare_events(received, expected, what, limit=8):
    """Problems of `received` [(id, kind, data)] against `expected` (same shape): duplicates,
    order, losses, extras, altered data. An empty list when they are equal."""
    problems = []
    seen = {}
    for i, (eid, _kind, _data) in enumerate(received):
        if eid in seen:
            problems.append('%s: id %s received twice (#%d and #%d)' % (what, eid, seen[eid], i))
        seen[eid] = i
        if i and stream_id_key(eid) <= stream_id_key(received[i - 1][0]):
            problems.append('%s: id %s (#%d) after %s: out of stream order' % (what, eid, i, received[i - 1][0]))
    want = {e[0]: e for e in expected}
    missing = [e[0] for e in expected if e[0] not in seen]
    if missing:
        problems.append('%s: %d of %d expected events never received, first %s' % (
            what, len(missing), len(expected), missing[:limit]))
    extra = [r[0] for r in received if r[0] not in want]
    if extra:
        problems.append('%s: %d events received that it may not see or that are not in the stream, first %s'
                        % (what, len(extra), extra[:limit]))
    altered = [r for r in received if r[0] in want and tuple(r) != tuple(want[r[0]])]
    if altered:
        r = altered[0]
        problems.append('%s: %d events differ from the stream entry, first %r, stream has %r'
                        % (what, len(altered), r, want[r[0]]))
    return problems[:limit * 2]


class Response:
    """An HTTP response read whole (errors, /metrics, /healthz...)."""

    def __init__(self, status, reason, headers, body, raw_head=b''):
        self.status = status
        self.reason = reason
        self.headers = headers  # lowercased name -> list of values
        self.body = body
        self.raw_head = raw_head

    def header(self, name):
        values = self.headers.get(name.lower())
        return values[-1] if values else None

    def text(self):
        return self.body.decode('utf-8', errors='replace')

    def json(self):
        return json.loads(self.text())

    def __str__(self):
        return 'HTTP %s %s %s' % (self.status, self.reason, self.text()[:200].strip())


def parse_head(head):
    """Status line and headers of a response head (bytes up to the blank line)."""
    lines = head.decode('latin-1').split('\r\n')
    parts = lines[0].split(' ', 2)
    if len(parts) < 2 or not parts[0].startswith('HTTP/') or not parts[1].isdigit():
        raise ValueError('not an HTTP status line: %r' % lines[0][:100])
    headers = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(':')
            headers.setdefault(name.strip().lower(), []).append(value.strip())
    return int(parts[1]), parts[2] if len(parts) > 2 else '', headers


class ChunkedDecoder:
    """Incremental Transfer-Encoding: chunked decoding; `done` after the last chunk."""

    def __init__(self):
        self.buf = b''
        self.left = None  # bytes left in the current chunk, None: a size line comes next
        self.done = False

    def feed(self, data):
        self.buf += data
        out = []
        while not self.done:
            if self.left is None:
                end = self.buf.find(b'\r\n')
                if end < 0:
                    break
                size = self.buf[:end].split(b';')[0].strip()
                self.buf = self.buf[end + 2:]
                self.left = int(size, 16)
                if self.left == 0:
                    self.done = True
                    break
            elif self.left > 0:
                piece = self.buf[:self.left]
                if not piece:
                    break
                out.append(piece)
                self.buf = self.buf[len(piece):]
                self.left -= len(piece)
            else:  # the CRLF after a chunk
                if len(self.buf) < 2:
                    break
                if self.buf[:2] != b'\r\n':
                    raise ValueError('chunk not followed by CRLF')
                self.buf = self.buf[2:]
                self.left = None
        return b''.join(out)


def open_socket(port, source_ip=None, rcvbuf=None, timeout=10.0):
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)  # before connect: sets the window
    if source_ip:
        sock.bind((source_ip, 0))
    sock.settimeout(timeout)
    sock.connect(('127.0.0.1', port))
    return sock


def request_bytes(port, path, method='GET', headers=(), version='HTTP/1.1', body=None):
    """The request's bytes; a body (bytes) goes with its Content-Length."""
    lines = ['%s %s %s' % (method, path, version), 'Host: 127.0.0.1:%d' % port]
    lines += ['%s: %s' % h for h in headers]
    if body is not None:
        lines.append('Content-Length: %d' % len(body))
    return ('\r\n'.join(lines) + '\r\n\r\n').encode('latin-1') + (body or b'')


def raw_exchange(port, data, timeout=10.0, source_ip=None, max_bytes=1 << 20):
    """Sends `data` as is and reads until the server closes, `timeout` passes or `max_bytes` came.
    Returns (bytes received, how it ended: 'closed', 'reset', 'timeout' or 'full')."""
    sock = open_socket(port, source_ip, timeout=timeout)
    got = bytearray()
    deadline = time.monotonic() + timeout
    try:
        try:
            sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # it may refuse before reading everything; what it answered still counts
        while len(got) < max_bytes:
            left = deadline - time.monotonic()
            if left <= 0:
                return bytes(got), 'timeout'
            sock.settimeout(left)
            try:
                chunk = sock.recv(65536)
            except socket.timeout:
                return bytes(got), 'timeout'
            except ConnectionResetError:
                return bytes(got), 'reset'
            if not chunk:
                return bytes(got), 'closed'
            got += chunk
        return bytes(got), 'full'
    finally:
        sock.close()


def http_request(port, path, method='GET', headers=(), timeout=10.0, source_ip=None, body=None):
    """One request with Connection: close; the whole response (not for 200 streams)."""
    data = request_bytes(port, path, method, list(headers) + [('Connection', 'close')], body=body)
    raw, _how = raw_exchange(port, data, timeout, source_ip)
    head, sep, body = raw.partition(b'\r\n\r\n')
    if not sep:
        raise TestFailure('%s %s: no complete response head in %r' % (method, path, raw[:200]))
    status, reason, hdrs = parse_head(head)
    if 'chunked' in ','.join(hdrs.get('transfer-encoding', [])).lower():
        body = ChunkedDecoder().feed(body)
    return Response(status, reason, hdrs, body, head)


def curl(port, path, headers=(), max_time=5.0, extra=(), source_ip=None):
    """curl -sS -N ... -D <head> -o <body>: (status, headers, body) for a request that ends by
    itself (an error, /metrics). A 200 stream is cut after max_time (curl's exit 28)."""
    head_file = RUN.path('curl', 'head-%d' % next(_curl_counter))
    body_file = head_file.replace('head-', 'body-')
    cmd = ['curl', '-sS', '-N', '--max-time', '%.1f' % max_time, '-D', head_file, '-o', body_file]
    if source_ip:
        cmd += ['--interface', source_ip]
    for name, value in headers:
        cmd += ['-H', '%s: %s' % (name, value)]
    cmd += list(extra) + ['http://127.0.0.1:%d%s' % (port, path)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=max_time + 10)
    if done.returncode not in (0, 28):
        raise TestFailure('%s: exit %d %s' % (' '.join(cmd), done.returncode, done.stderr.strip()))
    with open(head_file, 'rb') as f:
        head = f.read()
    with open(body_file, 'rb') if os.path.exists(body_file) else open(os.devnull, 'rb') as f:
        body = f.read()
    # -D records every response head (a 100 Continue too): the last one counts.
    blocks = [b for b in head.split(b'\r\n\r\n') if b.strip()]
    if not blocks:
        raise TestFailure('%s: no response head' % ' '.join(cmd))
    status, reason, hdrs = parse_head(blocks[-1])
    return Response(status, reason, hdrs, body, blocks[-1])


_curl_counter = iter(range(1, 1 << 30))


class SseEvent:
    __slots__ = ('id', 'event', 'data', 'last_id')

    def __init__(self, event_id, event, data, last_id):
        self.id = event_id        # the id: field of this event, None when it had none
        self.event = event
        self.data = data
        self.last_id = last_id    # the client's last event id after it (what EventSource would resend)

    def tuple(self):
        return self.id, self.event, self.data

    def __repr__(self):
        return 'SseEvent(%s %s %s)' % (self.id, self.event, (self.data or '')[:80])


class SseParser:
    """The event stream format of the HTML standard, fed bytes as they come: lines end in CRLF, LF
    or CR; `:` starts a comment; an event is dispatched at a blank line when it has data."""

    def __init__(self):
        self.text = ''
        self.pending_cr = False
        self.data, self.event, self.event_id = [], None, None
        self.last_id = ''
        self.items = []  # ('event', SseEvent) | ('comment', text) | ('retry', ms), in order
        self.decoder = codecs.getincrementaldecoder('utf-8')('replace')

    def feed(self, data):
        text = self.decoder.decode(data)
        if self.pending_cr and text.startswith('\n'):
            text = text[1:]  # the second half of a CRLF split across reads
        if not text:
            return
        self.pending_cr = text.endswith('\r')
        lines = re.split(r'\r\n|\r|\n', self.text + text)
        self.text = lines.pop()  # the unfinished last line
        for line in lines:
            self._line(line)

    def _line(self, line):
        if line == '':
            if self.data:
                if self.event_id is not None:
                    self.last_id = self.event_id
                self.items.append(('event', SseEvent(self.event_id, self.event or 'message', '\n'.join(self.data),
                                                     self.last_id)))
            self.data, self.event, self.event_id = [], None, None
            return
        if line.startswith(':'):
            self.items.append(('comment', line[1:]))
            return
        name, colon, value = line.partition(':')
        if colon and value.startswith(' '):
            value = value[1:]
        if name == 'data':
            self.data.append(value)
        elif name == 'event':
            self.event = value
        elif name == 'id' and '\0' not in value:
            self.event_id = value
        elif name == 'retry' and value.isdigit():
            self.items.append(('retry', int(value)))


class SseStream:
    """GET /v1/stream over a raw socket, read by a thread of its own: the status and headers, then
    every event, comment and retry: in order (`items`), or the body of an error response.
    `pause()` stops reading the socket (a slow client), `resume()` reads on. With `tls` (an
    ssl.SSLContext) it speaks HTTPS, to a server certified for localhost."""

    def __init__(self, port, token=None, query='', last_event_id=None, headers=(), source_ip=None, rcvbuf=None,
                 path='/v1/stream', name='stream', paused_after_connect=False, tls=None):
        self.port = port
        self.name = name
        hdrs = [('Accept', 'text/event-stream'), ('Cache-Control', 'no-cache')]
        if token is not None:
            hdrs.append(('Authorization', 'Bearer ' + token))
        if last_event_id is not None:
            hdrs.append(('Last-Event-ID', last_event_id))
        self.request = request_bytes(port, path + ('?' + query if query else ''), headers=hdrs + list(headers))
        self.status = None
        self.headers = {}
        self.body = b''
        self.raw = bytearray()    # the decoded body as received
        self.parser = SseParser()
        self.closed = False       # the server closed (or reset) the connection
        self.how = None           # 'closed', 'reset', 'local' (we closed), or an error
        self.local_port = None
        self.lock = threading.Lock()
        self.reading = threading.Event()
        self.reading.set()
        self.paused_after_connect = paused_after_connect
        self.stopping = False
        self.sock = open_socket(port, source_ip, rcvbuf)
        if tls:
            self.sock = tls.wrap_socket(self.sock, server_hostname='localhost')
        self.local_port = self.sock.getsockname()[1]
        self.sock.sendall(self.request)
        self.thread = threading.Thread(target=self._run, name='sse-%s' % name, daemon=True)
        self.thread.start()

    def __str__(self):
        return 'stream %s (:%s)' % (self.name, self.local_port)

    # -- reading
    def _recv(self):
        self.reading.wait()
        if self.stopping:
            return b''
        self.sock.settimeout(0.2)
        while True:
            try:
                return self.sock.recv(65536)
            except socket.timeout:
                if self.stopping:
                    return b''
                if not self.reading.is_set():
                    self.reading.wait()

    def _run(self):
        buf = b''
        try:
            while b'\r\n\r\n' not in buf:
                chunk = self._recv()
                if not chunk:
                    raise ConnectionError('closed before a complete response head: %r' % buf[:200])
                buf += chunk
            head, _, rest = buf.partition(b'\r\n\r\n')
            status, reason, headers = parse_head(head)
            chunked = 'chunked' in ','.join(headers.get('transfer-encoding', [])).lower()
            decoder = ChunkedDecoder() if chunked else None
            length = headers.get('content-length')
            length = int(length[-1]) if length and not chunked else None
            with self.lock:
                self.reason = reason
                self.headers = headers
                self.status = status
            data = rest
            while True:
                body = decoder.feed(data) if decoder else data
                if body:
                    with self.lock:
                        self.raw += body
                        if status == 200:
                            self.parser.feed(body)
                            if self.paused_after_connect and self.connected_event():
                                self.reading.clear()
                                self.paused_after_connect = False
                        else:
                            self.body += body
                if decoder and decoder.done:
                    break
                if length is not None and len(self.raw) >= length:
                    break  # a whole error response on a connection kept alive
                data = self._recv()
                if not data:
                    break
            self.how = 'local' if self.stopping else 'closed'
        except ConnectionResetError:
            self.how = 'reset'
        except OSError as e:
            self.how = 'local' if self.stopping else 'error: %s' % e
        except Exception as e:  # a malformed response: recorded, the checks report it
            self.how = 'error: %s' % e
        finally:
            with self.lock:
                self.closed = True
            try:
                self.sock.close()
            except OSError:
                pass

    def pause(self):
        self.reading.clear()

    def resume(self):
        self.reading.set()

    def close(self):
        self.stopping = True
        self.reading.set()
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.thread.join(5)

    # -- looking
    def header(self, name):
        values = self.headers.get(name.lower())
        return values[-1] if values else None

    def items(self):
        with self.lock:
            return list(self.parser.items)

    def events(self, kinds=None):
        return [v for k, v in self.items() if k == 'event' and (kinds is None or v.event in kinds)]

    def data_events(self):
        """activity and read events as (id, kind, data), comparable with expected_events."""
        return [e.tuple() for e in self.events(('activity', 'read'))]

    def connected_event(self):
        for kind, value in self.parser.items:
            if kind == 'event' and value.event == 'connected':
                return value
        return None

    def last_id(self):
        with self.lock:
            return self.parser.last_id

    def wait_status(self, timeout=10.0):
        wait_until(lambda: self.status is not None or self.closed, '%s to answer' % self, timeout, 0.01)
        if self.status is None:
            raise TestFailure('%s: no response (%s)' % (self, self.how))
        return self.status

    def wait(self, predicate, what, timeout=15.0):
        return wait_until(lambda: predicate(self), '%s: %s' % (self, what), timeout, 0.01)

    def wait_connected(self, timeout=10.0):
        status = self.wait_status(timeout)
        if status != 200:
            raise TestFailure('%s: HTTP %s, expected 200: %s' % (self, status, self.body[:300]))
        return self.wait(lambda s: s.events(('connected',)) or s.closed, 'event: connected', timeout)

    def wait_closed(self, timeout=15.0):
        return self.wait(lambda s: s.closed, 'the server to close the connection', timeout)

    def wait_event(self, predicate, what, timeout=15.0):
        def found(s):
            for e in s.events():
                if predicate(e):
                    return e
            if s.closed:
                raise TestFailure('%s: closed (%s) while waiting for %s' % (s, s.how, what))
            return None
        return self.wait(found, what, timeout)


class ResumingClient:
    """A client that keeps one stream open: when the server closes it, it reconnects with
    Last-Event-ID = the last id it saw, as EventSource does. Collects every activity and read
    event over all its connections (`received`), and the connections' history."""

    def __init__(self, port, token, name, query='', reconnect_for=30.0, first_last_event_id=None):
        self.port, self.token, self.name, self.query = port, token, name, query
        self.reconnect_for = reconnect_for
        self.received = []       # (id, kind, data)
        self.connects = []       # (Last-Event-ID sent, connected id, status)
        self.resets = []
        self.refusals = []       # statuses and errors met while reconnecting
        self.stream = None
        self.last_id = first_last_event_id
        self.start_id = None     # the first connection's connected id
        self.stopping = False
        self.lock = threading.Lock()
        self.error = None
        self.thread = threading.Thread(target=self._run, name='client-%s' % name, daemon=True)
        self.thread.start()

    def _open(self):
        deadline = time.monotonic() + self.reconnect_for
        delay = 0.02
        while not self.stopping:
            try:
                s = SseStream(self.port, self.token, self.query, self.last_id, name=self.name)
                status = s.wait_status(10)
                if status == 200:
                    return s
                self.refusals.append(status)
                s.close()
            except (OSError, TestFailure) as e:
                self.refusals.append(str(e)[:80])
            if time.monotonic() > deadline:
                raise TestFailure('%s could not reconnect within %.0f s: %s' % (self.name, self.reconnect_for,
                                                                               self.refusals[-5:]))
            time.sleep(delay)
            delay = min(delay * 2, 0.5)
        return None

    def _run(self):
        try:
            while not self.stopping:
                s = self._open()
                if s is None:
                    return
                with self.lock:
                    self.stream = s
                sent = self.last_id
                consumed = 0
                while True:
                    items = s.items()
                    for kind, value in items[consumed:]:
                        if kind != 'event':
                            continue
                        with self.lock:
                            if value.event == 'connected':
                                self.connects.append((sent, value.id, 200))
                                if self.start_id is None:
                                    self.start_id = value.id
                            elif value.event == 'reset':
                                self.resets.append((sent, value.data))
                            elif value.event in ('activity', 'read'):
                                self.received.append(value.tuple())
                            if value.id is not None:
                                self.last_id = value.id
                    consumed = len(items)
                    if s.closed:
                        if len(s.items()) == consumed:
                            break
                        continue
                    time.sleep(0.01)
        except Exception as e:  # reported by check()
            self.error = e

    def snapshot(self):
        with self.lock:
            return list(self.received)

    def wait_for_id(self, entry_id, timeout=30.0):
        def there():
            if self.error:
                raise TestFailure('%s: %s' % (self.name, self.error))
            last = self.last_id
            return last is not None and ID_RE.match(last) and stream_id_key(last) >= stream_id_key(entry_id)
        wait_until(there, '%s to receive up to %s' % (self.name, entry_id), timeout, 0.02)

    def stop(self):
        self.stopping = True
        with self.lock:
            s = self.stream
        if s is not None:
            s.close()
        self.thread.join(10)


class Gateway(Notifier):
    """A pgfeed-notifier with its SSE gateway: --http.port (a free port, or 0: read back from the
    supervisor's log line `msg=listening port=N`), --http.workers, an HS256 secret, and the bridge
    ticking every 50 ms. `config` is an ini file passed with -c; `nofile` lowers RLIMIT_NOFILE.
    start() returns once /healthz answers and every worker logged `msg=serving`."""

    def __init__(self, name, dbname, redis_server, workers=2, port=None, secret=SECRET, config=None, args=(),
                 nofile=None):
        self.requested_port = free_port() if port is None else port
        self.port = self.requested_port or None
        self.workers = workers
        flags = ['--http.listen=127.0.0.1', '--http.port=%d' % self.requested_port, '--http.workers=%d' % workers,
                 '--bridge.tick_ms=50']
        if secret is not None:
            flags.append('--auth.hs256_secrets=' + secret)
        if config:
            flags = ['-c', config] + flags
        super().__init__(name, dbname, redis_server, flags + list(args), nofile)

    def start(self, wait=True):
        super().start()
        if wait:
            self.wait_serving()
        return self

    def log_since_start(self):
        with open(self.log_path, errors='replace') as f:
            f.seek(self.log_offset)
            return f.read()

    def log_lines(self, msg):
        """Lines of the latest start's log with msg=<msg>."""
        pattern = re.compile(r'\bmsg=%s(\s|$)' % re.escape(msg))
        return [line for line in self.log_since_start().splitlines() if pattern.search(line)]

    def wait_serving(self, timeout=20.0):
        """Until the supervisor logged `msg=listening port=N` (the port, when 0 was asked for),
        every worker logged `msg=serving`, and /healthz answers 200."""
        def serving():
            if not self.alive():
                raise TestFailure('%s exited with %s at start:\n%s' % (self, self.exit_status(), self.log_tail()))
            listening = self.log_lines('listening')
            if not listening or len(self.log_lines('serving')) < self.workers:
                return False
            ports = {int(m.group(1)) for m in (re.search(r'\bport=(\d+)', line) for line in listening) if m}
            if len(ports) != 1 or (self.requested_port and ports != {self.requested_port}):
                raise TestFailure('%s: --http.port=%d, yet the log says it listens on %s' % (
                    self, self.requested_port, sorted(ports)))
            self.port = ports.pop()
            try:
                return http_request(self.port, '/healthz', timeout=2).status == 200
            except (OSError, TestFailure, ValueError):
                return False
        wait_until(serving, '%s to listen (%d workers) and answer /healthz' % (self, self.workers), timeout, 0.02)
        self.wait_streams_ready(timeout)

    def readyz_of_a_worker(self):
        """(pid of the worker that answered, its /readyz JSON): one request on a connection kept
        open until the answer is in, so the worker holding it can be told from /proc."""
        sock = open_socket(self.port, timeout=2)
        try:
            sock.sendall(request_bytes(self.port, '/readyz'))
            got = b''
            while True:
                head, sep, body = got.partition(b'\r\n\r\n')
                if sep:
                    _status, _reason, headers = parse_head(head)
                    length = int((headers.get('content-length') or ['0'])[-1])
                    if len(body) >= length:
                        break
                chunk = sock.recv(65536)
                if not chunk:
                    raise OSError('closed before the /readyz answer was complete')
                got += chunk
            owner = socket_owner(self.port, sock.getsockname()[1], self.worker_pids())
            return owner, json.loads(body[:length].decode())
        finally:
            sock.close()

    def wait_streams_ready(self, timeout=20.0):
        """Until every worker's /readyz says redis: true, i.e. its stream reader has a position
        and it admits streams (before that it answers them 503)."""
        ready = set()

        def all_ready():
            try:
                owner, body = self.readyz_of_a_worker()
            except (OSError, ValueError):
                return False
            if owner is not None and body.get('redis') is True:
                ready.add(owner)
            return set(self.worker_pids()) <= ready
        wait_until(all_ready, '%s: every worker\'s /readyz to say redis: true' % self, timeout, 0.01)

    def worker_pids(self):
        """The HTTP workers among the supervisor's children (the bridge's process is the other)."""
        if not self.alive():
            return []
        return [pid for pid in children(self.proc.pid) if process_name(pid).startswith('pgfeed-worker')]

    def stream(self, token=None, **kwargs):
        return SseStream(self.port, token, **kwargs)

    def get(self, path, headers=(), **kwargs):
        return http_request(self.port, path, headers=headers, **kwargs)

    def metrics(self):
        r = self.get('/metrics')
        if r.status != 200:
            raise TestFailure('GET /metrics: %s' % r)
        return parse_prometheus(r.text())

    def signal(self, sig):
        self.proc.send_signal(sig)


def choose_scenarios(label, scenarios, argv):
    """Reads `SCRIPT [SEED [SCENARIO...]]`: (seed, names of the scenarios to run), the seed printed
    with how to rerun. Exits 2 for an unknown scenario, and 1, with the failure counted, when there
    is no notifier binary to test."""
    seed = seed_from(argv[:2], default=1)
    known = [name for name, _ in scenarios]
    chosen = argv[2:] or known
    unknown = set(chosen) - set(known)
    if unknown:
        sys.stderr.write('unknown scenarios %s; known: %s\n' % (sorted(unknown), known))
        sys.exit(2)
    script = os.path.relpath(os.path.abspath(argv[0]), os.path.join(os.path.dirname(__file__), '..', '..'))
    print('%s: seed %d (rerun: python3 %s %d [SCENARIO...])' % (label, seed, script, seed), flush=True)
    if not notifier_available():
        print('%s: FAIL: no notifier binary at %s (make notifier)' % (label, NOTIFIER_BIN))
        print('%s: 0 passed, %d failed' % (label, len(chosen)))
        sys.exit(1)
    return seed, chosen


def run_scenarios(label, scenarios, chosen, seed, setups, notifiers_of):
    """Runs the chosen scenarios, each as run(seed), with `setups` (the list a scenario registers its
    servers in) emptied around it; prints "label name: OK (t s) summary" or FAIL with the last log
    lines of notifiers_of(setup) for each setup, then "label: N passed, M failed". Returns the exit
    status."""
    passed = failed = 0
    for name, run in scenarios:
        if name not in chosen:
            continue
        started = time.monotonic()
        setups.clear()
        try:
            summary = run(seed)
            print('%s %s: OK (%.1f s) %s' % (label, name, time.monotonic() - started, summary), flush=True)
            passed += 1
        except Exception as e:  # noqa: BLE001 -- every failure is reported, then the next scenario runs
            failed += 1
            RUN.failed = True
            if not isinstance(e, TestFailure):
                traceback.print_exc()
            print('%s %s: FAIL (%.1f s) %s' % (label, name, time.monotonic() - started, e), flush=True)
            for setup in setups:
                for n in notifiers_of(setup):
                    print('--- last lines of %s (%s)\n%s' % (n, n.log_path, n.log_tail(15)), end='')
        finally:
            setups.clear()
    print('%s: %d passed, %d failed' % (label, passed, failed), flush=True)
    return 0 if failed == 0 and passed > 0 else 1


def process_name(pid):
    """/proc/PID/comm: the notifier names its processes pgfeed-worker-N and pgfeed-bridge."""
    try:
        with open('/proc/%d/comm' % pid) as f:
            return f.read().strip()
    except OSError:
        return ''


def children(pid):
    """Pids of the live processes whose parent is `pid`."""
    found = []
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        try:
            with open('/proc/%s/stat' % entry) as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rfind(')') + 2:].split()
        if int(fields[1]) == pid and fields[0] != 'Z':
            found.append(int(entry))
    return sorted(found)


def socket_owner(server_port, client_port, pids):
    """The pid among `pids` that holds the server side of the loopback TCP connection from
    client_port to server_port, or None."""
    inode = None
    for table in ('/proc/net/tcp', '/proc/net/tcp6'):
        try:
            with open(table) as f:
                rows = f.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            cols = row.split()
            local_port = int(cols[1].split(':')[1], 16)
            remote_port = int(cols[2].split(':')[1], 16)
            if local_port == server_port and remote_port == client_port:
                inode = cols[9]
    if inode is None:
        return None
    target = 'socket:[%s]' % inode
    for pid in pids:
        try:
            for fd in os.listdir('/proc/%d/fd' % pid):
                try:
                    if os.readlink('/proc/%d/fd/%s' % (pid, fd)) == target:
                        return pid
                except OSError:
                    pass
        except OSError:
            pass
    return None


# -- Prometheus text format (0.0.4) ------------------------------------------------------------------------

_METRIC_NAME = re.compile(r'[a-zA-Z_:][a-zA-Z0-9_:]*$')
_LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\\n]|\\[\\"n])*)"\s*(,|$)')
_SAMPLE = re.compile(r'([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})?\s+(\S+)(\s+(-?\d+))?\s*$')
_TYPES = {'counter', 'gauge', 'histogram', 'summary', 'untyped'}


def _family(name, types):
    for suffix in ('_bucket', '_sum', '_count'):
        base = name[:-len(suffix)]
        if name.endswith(suffix) and types.get(base) in ('histogram', 'summary'):
            return base
    return name


class Metrics:
    """A parsed scrape: samples[(name, frozenset(labels.items()))] = value, types, problems."""

    def __init__(self, samples, types, problems, text):
        self.samples = samples
        self.types = types
        self.problems = problems
        self.text = text

    def get(self, name, **labels):
        """Sum of the series of `name` whose labels include `labels` (e.g. over worker=)."""
        want = set((k, str(v)) for k, v in labels.items())
        return sum(v for (n, ls), v in self.samples.items() if n == name and want <= ls)

    def series(self, name):
        return {ls: v for (n, ls), v in self.samples.items() if n == name}


def parse_prometheus(text):
    samples, types, helps, problems = {}, {}, set(), []
    families_done, current = set(), None
    if text and not text.endswith('\n'):
        problems.append('the text does not end with a newline')
    for number, line in enumerate(text.split('\n')[:-1] if text.endswith('\n') else text.split('\n'), 1):
        where = 'line %d %r' % (number, line[:120])
        if not line.strip():
            continue
        if line.startswith('#'):
            parts = line.split(None, 3)
            if len(parts) >= 2 and parts[1] in ('HELP', 'TYPE'):
                if len(parts) < 3 or not _METRIC_NAME.match(parts[2]):
                    problems.append('%s: no valid metric name' % where)
                    continue
                name = parts[2]
                if parts[1] == 'TYPE':
                    if name in types:
                        problems.append('%s: a second TYPE for %s' % (where, name))
                    if len(parts) < 4 or parts[3].strip() not in _TYPES:
                        problems.append('%s: unknown type' % where)
                    if any(_family(n, types) == name for n, _ in samples):
                        problems.append('%s: TYPE after samples of %s' % (where, name))
                    types[name] = parts[3].strip() if len(parts) > 3 else None
                else:
                    if name in helps:
                        problems.append('%s: a second HELP for %s' % (where, name))
                    helps.add(name)
            continue
        m = _SAMPLE.match(line)
        if not m:
            problems.append('%s: not a sample line' % where)
            continue
        name, labels_text, value_text = m.group(1), m.group(3), m.group(4)
        labels = {}
        if labels_text:
            pos = 0
            while pos < len(labels_text):
                lm = _LABEL.match(labels_text, pos)
                if not lm:
                    problems.append('%s: bad label syntax at %r' % (where, labels_text[pos:pos + 30]))
                    break
                if lm.group(1) in labels:
                    problems.append('%s: label %s twice' % (where, lm.group(1)))
                labels[lm.group(1)] = lm.group(2)
                pos = lm.end()
        try:
            value = float(value_text)  # accepts NaN, +Inf, -Inf
        except ValueError:
            problems.append('%s: value %r is not a float' % (where, value_text))
            continue
        family = _family(name, types)
        if family != current:
            if family in families_done:
                problems.append('%s: samples of %s are not together' % (where, family))
            if current is not None:
                families_done.add(current)
            current = family
        key = (name, frozenset(labels.items()))
        if key in samples:
            problems.append('%s: the series %s%s appears twice' % (where, name, labels))
        samples[key] = value
        ftype = types.get(family)
        if ftype == 'counter' and (value < 0 or value != value):
            problems.append('%s: a counter below 0 or NaN' % where)
    for (name, labels), value in samples.items():
        if types.get(_family(name, types)) == 'histogram' and name.endswith('_bucket') and 'le' not in dict(labels):
            problems.append('%s: a histogram bucket without le' % name)
    return Metrics(samples, types, problems, text)


if __name__ == '__main__':
    print('_servers.py: helper module of the notifier tests, nothing to check')
