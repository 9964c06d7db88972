#!/usr/bin/env python3
"""The SSE gateway of pgfeed-notifier (GET /v1/stream, /metrics, /healthz, /readyz) against real
servers: each scenario has its own feed database, redis-server and notifier (a supervisor and its
workers), and talks to it with curl -N, raw sockets, and the npm eventsource client (test/notifier/js,
node's test runner). Every wait is on a condition with a deadline.

Scenarios:
  live_events_curl         curl -N: 200 with Content-Type text/event-stream, Cache-Control no-cache,
                           X-Accel-Buffering no; retry: then `event: connected` first; an insert
                           committed in PostgreSQL arrives as `event: activity` with the stream entry's
                           id and data; heartbeat comments every --http.heartbeat_ms=200. Port 0: the
                           port comes from the log line `msg=listening port=N`.
  live_events_eventsource  js/stream.test.mjs: the same with the eventsource client, ?access_token=, and
                           a refused token failing it with 401.
  eventsource_resume       I5, js/resume.test.mjs: random reconnects (close and reopen with
                           Last-Event-ID or ?lastEventId=, or a proxy cut and the library's own
                           reconnect) while a writer commits ~2000 events: every visible event once,
                           in stream order, against XRANGE filtered by topics and user.
  private_events           read events only to their user; a token's topics (and ?topics=) filter
                           activity events; each stream equals the stream filtered for it.
  reset                    --bridge.maxlen=10: a trimmed Last-Event-ID and one newer than the stream
                           get `event: reset` then live events; a retained one replays exactly;
                           a malformed one is 400 (header and ?lastEventId=).
  limit_per_user           the 4th stream of a user is 429; after one closes a new one is admitted.
  limit_total              --limits.max_connections=4: the 5th stream is 503.
  limit_rate               per-IP token bucket (burst 2, 0.01/s, 2 workers): 5 streams from one
                           address get a 429 with Retry-After; another address is still served.
  limit_header_size        headers over --http.max_header_bytes get a 4xx; the daemon keeps serving.
  slowloris                headers never finished are closed after --http.header_timeout_ms.
  slowloris_trickle        headers trickled a byte every 200 ms are closed too (the time allowed for
                           the headers, not only for silence).
  tokens                   expired, forged, alg none, HS512, no sub -> 401; topics escalation -> 403;
                           missing -> 401; cookie, ?access_token= and exp within the leeway work;
                           an open stream keeps streaming, no worker dies.
  malformed_requests       raw garbage, POST (405), unknown path (404), no Host, a huge URI, %00:
                           no worker dies and a good client still streams.
  slow_client              a client with a small SO_RCVBUF that stops reading while ~3 KB events flood
                           (--http.high_watermark_bytes=65536) is closed (slow_client in /metrics),
                           then resumes with its last id: no loss, no duplicate.
  burst_over_watermark     defaults: one commit of 400 ~3 KB events; a reader that keeps up and one
                           resuming from before it both get every event.
  sigterm_drain            SIGTERM: every stream gets retry: <drain_retry_ms> and is closed; exit 0
                           within 15 s, also with a client that stopped reading.
  sighup_reload            SIGHUP re-reads the ini file (-c): connections_per_user, hs256_secrets and
                           cors_origins apply to new connections; an open stream stays open.
  worker_kill              a worker killed with SIGKILL is restarted (new pid, /healthz); its clients
                           resume with Last-Event-ID: no loss, no duplicate, on every client.
  metrics_readyz           /metrics is valid Prometheus text, the same totals from every worker, and
                           counts what was done; /readyz is push, then poll (503) with redis down.
  cors                     an allowed Origin gets Access-Control-Allow-Origin = it and
                           Access-Control-Allow-Credentials: true; another origin no ACAO.

Usage: sse_gateway.py [SEED [SCENARIO...]]   (or PGFEED_SEED=N; PGFEED_SEED=random)
Runs under test/run-notifier-tests.sh, which provides the PostgreSQL cluster (PGHOST); the node
tests need `npm ci` in test/notifier/js (test/install-deps.sh does it).
"""
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
import urllib.parse

from _servers import (ID_RE, RUN, SECRET, STREAM, FeedDatabase, Gateway, RedisServer, ResumingClient, SseParser,
                      SseStream, TestFailure, choose_scenarios, compare_events, connect, curl, expected_events,
                      http_request, mint_token, open_socket, query, raw_exchange, read_stream, request_bytes,
                      run_scenarios, socket_owner, stream_id_key, wait_until)
from _harness import start_watchdog

LABEL = 'sse_gateway'
JS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'js')


def expect(condition, message):
    if not condition:
        raise TestFailure(message)


SETUPS = []  # of the scenario running: their gateways' logs are shown when it fails


class Setup:
    """A feed database, a redis-server and a gateway of the scenario's own."""

    def __init__(self, name, args=(), workers=2, port=None, secret=SECRET, config=None, start=True, nofile=None):
        SETUPS.append(self)
        self.name = name
        self.db = FeedDatabase('sse_%s' % name)
        self.db.__enter__()
        try:
            self.redis = RedisServer('%s-redis' % name).start()
        except BaseException:
            self.db.drop()
            raise
        self.client = self.redis.client()
        self.gateways = []
        try:
            self.gateway = self.new_gateway(args, workers, port, secret, config, start, nofile)
        except BaseException:
            self.close()
            raise

    def new_gateway(self, args=(), workers=2, port=None, secret=SECRET, config=None, start=True, nofile=None):
        g = Gateway('%s-gateway%d' % (self.name, len(self.gateways) + 1), self.db.name, self.redis, workers=workers,
                    port=port, secret=secret, config=config, args=args, nofile=nofile)
        self.gateways.append(g)
        if start:
            g.start()
        return g

    @property
    def port(self):
        return self.gateway.port

    def insert(self, n=1, mp_id=1, kind='vote'):
        """Commits n activities of topic mp_id:<mp_id> in one transaction; their ids."""
        rows = query(self.db.name, 'INSERT INTO activities (mp_id, kind) SELECT %s, %s FROM generate_series(1, %s) '
                     'RETURNING id', (mp_id, kind, n))
        query(self.db.name, 'CALL pgfeed.flush()')  # numbered: in the feed and on the way to the stream
        return [r[0] for r in rows]

    def mark_read(self, user, ids):
        return query(self.db.name, 'SELECT pgfeed.mark_read(%s, %s::bigint[])', (user, list(ids)))[0][0]

    def entry_of(self, activity_id, op='insert'):
        """The stream entry of an activity's event, or None while it is not there."""
        for entry_id, fields in self.client.xrevrange(STREAM, count=2000):
            if fields.get('kind') == 'activity':
                data = json.loads(fields.get('data', '{}'))
                if data.get('activity_id') == activity_id and data.get('op') == op:
                    return entry_id, fields
        return None

    def wait_entry(self, activity_id, timeout=15.0):
        return wait_until(lambda: self.entry_of(activity_id), 'activity %s in the stream' % activity_id, timeout, 0.01)

    def last_entry_id(self):
        last = self.client.xrevrange(STREAM, count=1)
        return last[0][0] if last else None

    def expected(self, user, patterns, after):
        return expected_events(self.client, user, patterns, after)

    def alive_with(self, pids, what):
        """The gateway runs with the same worker processes: none died and was replaced."""
        g = self.gateway
        expect(g.alive(), '%s exited (%s) %s:\n%s' % (g, g.exit_status(), what, g.log_tail()))
        now = g.worker_pids()
        expect(now == pids, 'worker pids %s became %s %s: a worker died\n%s' % (pids, now, what, g.log_tail()))

    def close(self):
        for g in self.gateways:
            g.stop()
        self.redis.stop()
        self.db.drop()


def open_streams(port, tokens, **kwargs):
    streams = [SseStream(port, t, name='s%d' % i, **kwargs) for i, t in enumerate(tokens)]
    for s in streams:
        s.wait_connected()
    return streams


def close_all(streams):
    for s in streams:
        s.close()


def status_of(port, token=None, query='', headers=(), source_ip=None):
    """Opens /v1/stream, returns (status, the stream); the caller closes it."""
    s = SseStream(port, token, query=query, headers=headers, source_ip=source_ip)
    return s.wait_status(), s


def refused(port, token=None, query='', headers=(), expected_status=None, what=''):
    """A /v1/stream request that must be refused: its status and JSON error body."""
    s = SseStream(port, token, query=query, headers=headers)
    try:
        status = s.wait_status()
        if expected_status is not None:
            expect(status == expected_status, '%s: HTTP %s, expected %s: %r' % (what, status, expected_status,
                                                                               bytes(s.raw[:300])))
            s.wait(lambda x: x.closed or (x.header('content-length') and len(x.raw) >= int(x.header('content-length'))),
                   'the error body', 5)
            try:
                body = json.loads(bytes(s.raw).decode())
            except ValueError:
                raise TestFailure('%s: HTTP %s with a body that is not JSON: %r' % (what, status, bytes(s.raw[:200])))
            expect(isinstance(body, dict) and isinstance(body.get('error'), str),
                   '%s: HTTP %s body %r, expected {"error": "..."}' % (what, status, body))
        return status, s
    finally:
        s.close()


# -- node -------------------------------------------------------------------------------------------------

def node_available():
    return os.path.isdir(os.path.join(JS_DIR, 'node_modules', 'eventsource'))


def start_node(test_file, env_extra):
    if not node_available():
        raise TestFailure('the eventsource package is not installed: run `npm ci` in %s (test/install-deps.sh)'
                          % JS_DIR)
    env = dict(os.environ)
    env.update({k: str(v) for k, v in env_extra.items()})
    log = open(RUN.path('node-%s.log' % os.path.basename(test_file)), 'w+')
    proc = subprocess.Popen(['node', '--test', '--test-reporter=tap', test_file], cwd=JS_DIR, env=env, stdout=log,
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    return proc, log


def finish_node(proc, log, timeout):
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)
        raise TestFailure('node did not finish within %.0f s:\n%s' % (timeout, tail_text(log, 40)))
    log.seek(0)
    out = log.read()
    counts = {}
    for line in out.splitlines():
        for key in ('pass', 'fail', 'skipped'):
            if line.startswith('# %s ' % key):
                counts[key] = int(line.split()[2])
    if proc.returncode != 0 or counts.get('fail', 1) != 0 or counts.get('pass', 0) == 0 or counts.get('skipped'):
        raise TestFailure('node --test exited %s (pass %s, fail %s, skipped %s):\n%s' % (
            proc.returncode, counts.get('pass'), counts.get('fail'), counts.get('skipped'), '\n'.join(
                out.splitlines()[-60:])))
    return counts['pass'], out


def tail_text(f, lines):
    f.seek(0)
    return '\n'.join(f.read().splitlines()[-lines:])


# -- writers ----------------------------------------------------------------------------------------------------

class Writer:
    """Commits events at random intervals from a thread: inserts of 1-5 activities on mp_id 1..4,
    and mark_read / mark_unread by a few users; counts the events its transactions wrote."""

    def __init__(self, dbname, seed, users, target=2000, pause=0.015, max_rows=5):
        self.dbname, self.rng, self.users = dbname, random.Random(seed), users
        self.target, self.pause, self.max_rows = target, pause, max_rows
        self.events = 0
        self.ids = []
        self.error = None
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._run, name='writer', daemon=True)

    def start(self):
        self.thread.start()
        return self

    def _run(self):
        conn = connect(self.dbname, 'writer')
        try:
            cur = conn.cursor()
            while self.events < self.target and not self.stop_event.is_set():
                r = self.rng.random()
                if r < 0.7 or len(self.ids) < 5:
                    rows = [(self.rng.randint(1, 4), self.rng.choice(['vote', 'speech', 'question']))
                            for _ in range(self.rng.randint(1, self.max_rows))]
                    cur.execute('INSERT INTO activities (mp_id, kind) VALUES %s RETURNING id'
                                % ', '.join(['(%s, %s)'] * len(rows)), [v for row in rows for v in row])
                    self.ids.extend(row[0] for row in cur.fetchall())
                    cur.execute('CALL pgfeed.flush()')  # numbered before anyone marks them
                    self.events += len(rows)
                else:
                    op = 'read' if r < 0.88 else 'unread'
                    cur.execute('SELECT pgfeed.mark_%s(%%s, %%s::bigint[])' % op,
                                (self.rng.choice(self.users), self.rng.sample(self.ids, self.rng.randint(1, 3))))
                    if cur.fetchone()[0]:
                        self.events += 1
                time.sleep(self.rng.uniform(0, self.pause))
        except Exception:
            self.error = traceback.format_exc()
        finally:
            conn.close()

    def stop(self):
        self.stop_event.set()
        self.thread.join(60)
        if self.error:
            raise TestFailure('the writer failed: %s' % self.error)


def settle(setup, mp_id=1):
    """Commits a sentinel activity after everything else and waits until it is in the stream: every
    event committed before is there too. Returns its stream entry id."""
    aid = setup.insert(1, mp_id=mp_id, kind='sentinel')[0]
    return setup.wait_entry(aid, timeout=30)[0]


# -- scenarios ----------------------------------------------------------------------------------------------------

def scenario_live_events_curl(_seed):
    setup = Setup('live_curl', ['--http.heartbeat_ms=200'], port=0)
    curl_proc = None
    try:
        g = setup.gateway
        expect(g.port and g.port > 0, 'no port learned from the log line msg=listening')
        token = mint_token('alice', ['mp_id:*'])
        head_file, body_file = RUN.path('live', 'head'), RUN.path('live', 'body')
        curl_proc = subprocess.Popen(['curl', '-sS', '-N', '--max-time', '60', '-D', head_file, '-o', body_file,
                                      '-H', 'Authorization: Bearer ' + token,
                                      'http://127.0.0.1:%d/v1/stream' % g.port],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

        def parsed():
            p = SseParser()
            if os.path.exists(body_file):
                with open(body_file, 'rb') as f:
                    p.feed(f.read())
            if curl_proc.poll() is not None:
                raise TestFailure('curl exited %s: %s' % (curl_proc.returncode, curl_proc.stderr.read().decode()))
            return p.items

        items = wait_until(lambda: [i for i in parsed() if i[0] == 'event'] and parsed(), 'curl to get an event', 15)
        with open(head_file, 'rb') as f:
            head = f.read().decode('latin-1')
        status_line = head.split('\r\n')[0]
        expect(status_line.split()[1] == '200', 'status line %r' % status_line)
        headers = {}
        for line in head.split('\r\n')[1:]:
            if ':' in line:
                name, _, value = line.partition(':')
                headers[name.strip().lower()] = value.strip()
        for name, want in (('content-type', 'text/event-stream'), ('cache-control', 'no-cache'),
                           ('x-accel-buffering', 'no')):
            got = headers.get(name)
            expect(got is not None and got.split(';')[0].strip().lower() == want,
                   'header %s is %r, expected %r; head:\n%s' % (name, got, want, head))
        with open(body_file, 'rb') as f:
            body = f.read()
        expect(body.startswith(b'retry: 3000\n\n'), 'the body starts %r, not with retry: 3000' % body[:80])
        events = [v for k, v in items if k == 'event']
        first = events[0]
        expect(first.event == 'connected' and first.id and ID_RE.match(first.id),
               'the first event is %r, expected connected with a stream id' % first)
        hello = json.loads(first.data)
        expect(hello.get('user') == 'alice' and hello.get('topics') == ['mp_id:*'],
               'connected data %r, expected user alice and topics ["mp_id:*"]' % first.data)

        aid = setup.insert(1, mp_id=3, kind='curl-live')[0]
        entry_id, fields = setup.wait_entry(aid)

        def got_activity():
            for k, v in parsed():
                if k == 'event' and v.event == 'activity' and json.loads(v.data).get('activity_id') == aid:
                    return v
            return None
        ev = wait_until(got_activity, 'curl to get the activity event of activity %d' % aid, 15)
        expect(ev.id == entry_id and ev.data == fields['data'],
               'event %r differs from the stream entry %s %s' % (ev, entry_id, fields))
        # Heartbeats: comments, at least 3 within a second or two at 200 ms.
        t0 = time.monotonic()
        wait_until(lambda: sum(1 for k, _ in parsed() if k == 'comment') >= 3, 'three heartbeat comments', 5)
        with open(body_file, 'rb') as f:
            body = f.read()
        expect(b'\n: \n\n' in body or b'\n:\n\n' in body, 'no heartbeat comment ": " in %r' % body[-200:])
        return 'port %d from the log; headers, retry, connected, activity %s, heartbeats within %.1f s' % (
            g.port, entry_id, time.monotonic() - t0)
    finally:
        if curl_proc is not None and curl_proc.poll() is None:
            curl_proc.terminate()
            curl_proc.wait(5)
        setup.close()


def scenario_live_events_eventsource(_seed):
    setup = Setup('live_es')
    try:
        proc, log = start_node('stream.test.mjs', {
            'PGFEED_SSE_PORT': setup.port, 'PGFEED_SSE_TOKEN': mint_token('js-alice', ['mp_id:*']),
            'PGFEED_SSE_USER': 'js-alice', 'PGFEED_SSE_DB': setup.db.name})
        passed, _ = finish_node(proc, log, 90)
        return 'node --test: %d passed' % passed
    finally:
        setup.close()


def scenario_eventsource_resume(seed):
    setup = Setup('resume', ['--http.retry_ms=100', '--limits.connections_per_user=100',
                             '--limits.new_connections_per_second=1000', '--limits.new_connections_burst=1000'])
    writer = None
    try:
        patterns = ['mp_id:1', 'mp_id:2']
        ready, done, out = RUN.path('resume', 'ready'), RUN.path('resume', 'done.json'), RUN.path('resume', 'out.json')
        proc, log = start_node('resume.test.mjs', {
            'PGFEED_SSE_PORT': setup.port, 'PGFEED_SSE_TOKEN': mint_token('alice', patterns),
            'PGFEED_SSE_USER': 'alice', 'PGFEED_SSE_READY': ready, 'PGFEED_SSE_DONE': done, 'PGFEED_SSE_OUT': out,
            'PGFEED_SSE_SEED': seed})
        try:
            wait_until(lambda: os.path.exists(ready) or proc.poll() is not None, 'the eventsource client to connect', 30)
            expect(proc.poll() is None, 'node exited early:\n%s' % tail_text(log, 40))
            writer = Writer(setup.db.name, seed, ['alice', 'bob'], target=2000).start()
            wait_until(lambda: not writer.thread.is_alive(), 'the writer to commit 2000 events', 120, 0.1)
            writer.stop()
            settle(setup)
            expected = setup.expected('alice', patterns, None)
            with open(done + '.tmp', 'w') as f:
                json.dump([list(e) for e in expected], f)
            os.rename(done + '.tmp', done)
        except BaseException:
            proc.kill()
            raise
        passed, _ = finish_node(proc, log, 120)
        with open(out) as f:
            result = json.load(f)
        st = result['stats']
        return ('%d events written, %d visible to the client, all received once in order; %d connections: %d header, '
                '%d query reopens, %d proxy cuts, %d library reconnects' % (
                    writer.events, result['expected'], st['opens'] + st['libraryReconnects'], st['headerReopens'],
                    st['queryReopens'], st['cuts'], st['libraryReconnects']))
    finally:
        if writer is not None:
            writer.stop_event.set()
        setup.close()


def scenario_private_events(_seed):
    setup = Setup('private')
    try:
        specs = [('alice', ['mp_id:*'], ''), ('bob', ['mp_id:*'], ''), ('carol', ['mp_id:1'], ''),
                 ('dave', ['mp_id:*'], 'topics=mp_id:2')]
        streams = [SseStream(setup.port, mint_token(u, t), query=q, name=u) for u, t, q in specs]
        for s in streams:
            s.wait_connected()
        for s, (user, topics, q) in zip(streams, specs):
            hello = json.loads(s.connected_event().data)
            want = ['mp_id:2'] if q else topics
            expect(hello.get('user') == user and hello.get('topics') == want,
                   '%s: connected data %s, expected user %s topics %s' % (user, hello, user, want))
        ones = setup.insert(3, mp_id=1)
        twos = setup.insert(3, mp_id=2)
        expect(setup.mark_read('alice', ones[:2] + twos[:1]) == 3, 'alice marked 3 read')
        expect(setup.mark_read('bob', twos[1:2]) == 1, 'bob marked 1 read')
        settle(setup, 1)
        settle(setup, 2)
        problems = []
        for s, (user, topics, q) in zip(streams, specs):
            patterns = ['mp_id:2'] if q else topics
            expected = setup.expected(user, patterns, s.connected_event().id)
            final = expected[-1][0]
            s.wait(lambda x: final in {e[0] for e in x.data_events()} or x.closed, 'its last event %s' % final, 15)
            problems += compare_events(s.data_events(), expected, user)
        a, b, c, d = (s.data_events() for s in streams)
        reads_of = lambda evs, who: [e for e in evs if e[1] == 'read' and json.loads(e[2]).get('user') == who]  # noqa: E731
        topics_in = lambda evs: {json.loads(e[2]).get('topic') for e in evs if e[1] == 'activity'}  # noqa: E731
        expect(not problems, '\n'.join(problems))
        expect(len(reads_of(a, 'alice')) == 1 and not reads_of(a, 'bob'), 'alice got reads %s' % [e for e in a
                                                                                               if e[1] == 'read'])
        expect(not reads_of(b, 'alice') and len(reads_of(b, 'bob')) == 1, 'bob got reads %s' % [e for e in b
                                                                                             if e[1] == 'read'])
        expect(not [e for e in c + d if e[1] == 'read'], 'carol or dave got read events of others')
        expect(topics_in(c) == {'mp_id:1'}, 'carol (topics mp_id:1) got topics %s' % topics_in(c))
        expect(topics_in(d) == {'mp_id:2'}, 'dave (?topics=mp_id:2) got topics %s' % topics_in(d))
        close_all(streams)
        return 'alice %d, bob %d, carol %d, dave %d events, each exactly its filter of the stream' % tuple(
            len(x) for x in (a, b, c, d))
    finally:
        setup.close()


def scenario_reset(_seed):
    setup = Setup('reset', ['--bridge.maxlen=10'])
    try:
        token = mint_token('alice', ['mp_id:*'])
        oldest = setup.wait_entry(setup.insert(1)[0])[0]
        for _ in range(8):
            setup.insert(50)
        settle(setup)
        first = wait_until(lambda: [setup.client.xrange(STREAM, count=1)[0][0]] if stream_id_key(
            setup.client.xrange(STREAM, count=1)[0][0]) > stream_id_key(oldest) else None,
            'the stream to be trimmed past %s' % oldest, 15)[0]
        info = setup.client.xinfo_stream(STREAM)
        last = setup.last_entry_id()
        ms, seq = stream_id_key(last)
        newer = '%d-0' % (ms + 100000)
        checks = []
        for what, lei in (('trimmed', oldest), ('newer than the stream', newer)):
            s = SseStream(setup.port, token, last_event_id=lei, name=what)
            s.wait_connected()
            reset = s.wait_event(lambda e: e.event == 'reset', 'event: reset for Last-Event-ID %s (%s)' % (lei, what), 10)
            kinds = [e.event for e in s.events()]
            expect(kinds[:2] == ['connected', 'reset'], '%s: events begin %s, expected connected, reset' % (what, kinds))
            reason = json.loads(reset.data).get('reason')
            expect(isinstance(reason, str) and reason, '%s: reset data %r has no reason' % (what, reset.data))
            aid = setup.insert(1)[0]
            entry_id, _ = setup.wait_entry(aid)
            s.wait_event(lambda e: e.id == entry_id, 'the live event %s after the reset' % entry_id)
            replayed = [e for e in s.data_events() if stream_id_key(e[0]) <= stream_id_key(last)]
            expect(not replayed, '%s: after the reset it replayed %s' % (what, [e[0] for e in replayed][:5]))
            checks.append('%s -> reset %r' % (what, reason))
            last = entry_id
            s.close()
        # A retained id: replayed exactly, no reset.
        entries = setup.client.xrange(STREAM)
        resume_at = entries[len(entries) // 2][0]
        s = SseStream(setup.port, token, last_event_id=resume_at, name='retained')
        s.wait_connected()
        expected = setup.expected('alice', ['mp_id:*'], resume_at)
        s.wait(lambda x: expected[-1][0] in {e[0] for e in x.data_events()}, 'the replay up to %s' % expected[-1][0])
        problems = compare_events(s.data_events(), expected, 'replay from %s' % resume_at)
        expect(not problems, '\n'.join(problems))
        expect(not s.events(('reset',)), 'a reset for the retained id %s (first entry %s)' % (resume_at, first))
        s.close()
        checks.append('retained id replayed %d events' % len(expected))
        # Malformed: 400 with the header and with ?lastEventId=.
        bad = ['abc', '1-', '-1', '01-1', '1-01', '1-1x', '1-1-1', '18446744073709551616-0', '1.5-0', '+1-0']
        for value in bad:
            r = curl(setup.port, '/v1/stream', [('Authorization', 'Bearer ' + token), ('Last-Event-ID', value)], 3)
            expect(r.status == 400, 'Last-Event-ID: %s -> HTTP %s, expected 400: %s' % (value, r.status, r.text()[:200]))
            r = curl(setup.port, '/v1/stream?lastEventId=' + urllib.parse.quote(value, safe=''),
                     [('Authorization', 'Bearer ' + token)], 3)
            expect(r.status == 400, '?lastEventId=%s -> HTTP %s, expected 400: %s' % (value, r.status, r.text()[:200]))
            expect('error' in r.json(), '400 body %r' % r.text())
        checks.append('%d malformed ids -> 400 twice each' % len(bad))
        return 'length %s, first %s; %s' % (info['length'], first, '; '.join(checks))
    finally:
        setup.close()


def scenario_limit_per_user(_seed):
    setup = Setup('per_user')
    try:
        token = mint_token('ulimit', ['mp_id:*'])
        pids = setup.gateway.worker_pids()
        streams = open_streams(setup.port, [token] * 3)
        owners = {socket_owner(setup.port, s.local_port, pids) for s in streams}
        status, _ = refused(setup.port, token, expected_status=429, what='the 4th stream of one user')
        other, s = status_of(setup.port, mint_token('someone-else', ['*']))
        s.close()
        expect(other == 200, 'another user got %s' % other)
        streams[0].close()

        def admitted():
            status, s = status_of(setup.port, token)
            if status == 200:
                streams[0] = s
                return True
            s.close()
            expect(status == 429, 'after a close: HTTP %s' % status)
            return False
        t0 = time.monotonic()
        wait_until(admitted, 'a stream to be admitted again after one closed', 10, 0.05)
        took = time.monotonic() - t0
        refused(setup.port, token, expected_status=429, what='the 4th stream again')
        close_all(streams)
        setup.alive_with(pids, 'after the per-user limit')
        return '3 admitted (over workers %s), 4th 429; admitted again %.2f s after a close' % (
            sorted(p for p in owners if p), took)
    finally:
        setup.close()


def scenario_limit_total(_seed):
    setup = Setup('total', ['--limits.max_connections=4'])
    try:
        streams = open_streams(setup.port, [mint_token('t%d' % i, ['*']) for i in range(4)])
        refused(setup.port, mint_token('t4', ['*']), expected_status=503, what='the 5th stream with max_connections=4')
        streams.pop().close()
        wait_until(lambda: _admit(setup.port, mint_token('t5', ['*']), streams), 'a stream admitted after one closed',
                   10, 0.05)
        close_all(streams)
        return '4 admitted, 5th 503, one more after a close'
    finally:
        setup.close()


def _admit(port, token, keep):
    status, s = status_of(port, token)
    if status == 200:
        keep.append(s)
        return True
    s.close()
    return False


def scenario_limit_rate(_seed):
    setup = Setup('rate', ['--limits.new_connections_burst=2', '--limits.new_connections_per_second=0.01'])
    try:
        token = mint_token('rate', ['*'])
        results = []
        streams = []
        for i in range(5):
            s = SseStream(setup.port, mint_token('rate%d' % i, ['*']), source_ip='127.0.0.7', name='rate%d' % i)
            results.append((s.wait_status(), s.header('retry-after'), bytes(s.raw[:200])))
            streams.append(s)
        statuses = [r[0] for r in results]
        limited = [r for r in results if r[0] == 429]
        expect(limited, '5 new streams from 127.0.0.7 with burst 2 per worker over 2 workers: %s, no 429' % statuses)
        expect(all(r[1] and r[1].isdigit() and int(r[1]) >= 1 for r in limited),
               '429 without a Retry-After of whole seconds: %s' % limited)
        expect(statuses.count(200) <= 4, 'more than 2 per worker admitted: %s' % statuses)
        expect(set(statuses) <= {200, 429}, 'statuses %s' % statuses)
        status, s = status_of(setup.port, token, source_ip='127.0.0.8')
        streams.append(s)
        expect(status == 200, 'another address (127.0.0.8) got %s' % status)
        close_all(streams)
        return 'statuses %s, Retry-After %s; another address 200' % (statuses, sorted({r[1] for r in limited}))
    finally:
        setup.close()


def first_status(raw):
    line = raw.split(b'\r\n', 1)[0].decode('latin-1')
    parts = line.split()
    return int(parts[1]) if len(parts) >= 2 and parts[0].startswith('HTTP/') and parts[1].isdigit() else None


def scenario_limit_header_size(_seed):
    setup = Setup('header_size', ['--http.max_header_bytes=8192'])
    try:
        token = mint_token('big', ['*'])
        pids = setup.gateway.worker_pids()
        good = SseStream(setup.port, token, name='good')
        good.wait_connected()
        seen = []
        for size in (9000, 64 * 1024, 900 * 1024):
            data = request_bytes(setup.port, '/v1/stream', headers=[('Authorization', 'Bearer ' + token),
                                                                    ('X-Pad', 'a' * size)])
            raw, how = raw_exchange(setup.port, data, timeout=10)
            status = first_status(raw)
            expect(status is not None and 400 <= status < 500,
                   'a %d-byte header: %s, expected a 4xx (400/413/431); got %r' % (
                       size, 'connection %s without a response' % how if status is None else 'HTTP %s' % status,
                       raw[:200]))
            seen.append('%d B -> %d' % (size, status))
        many = request_bytes(setup.port, '/v1/stream', headers=[('X-H%d' % i, 'v' * 50) for i in range(400)])
        raw, how = raw_exchange(setup.port, many, timeout=10)
        status = first_status(raw)
        expect(status is not None and 400 <= status < 500, '400 headers of 50 B: %s %r' % (how, raw[:200]))
        seen.append('400 headers -> %d' % status)
        aid = setup.insert(1)[0]
        entry_id, _ = setup.wait_entry(aid)
        good.wait_event(lambda e: e.id == entry_id, 'the open stream to go on')
        s = SseStream(setup.port, token, name='after')
        s.wait_connected()
        close_all([good, s])
        setup.alive_with(pids, 'after oversized headers')
        return ', '.join(seen) + '; streams go on'
    finally:
        setup.close()


def scenario_slowloris(_seed):
    setup = Setup('slowloris', ['--http.header_timeout_ms=500'])
    try:
        pids = setup.gateway.worker_pids()
        sock = open_socket(setup.port)
        try:
            sock.sendall(b'GET /v1/stream HTTP/1.1\r\nHost: 127.0.0.1\r\n')  # never finished
            closed = _wait_closed(sock, 5)
        finally:
            sock.close()
        expect(closed is not None, 'unfinished headers: still open 5 s later (header_timeout_ms=500)')
        s = SseStream(setup.port, mint_token('after', ['*']))
        s.wait_connected()
        s.close()
        setup.alive_with(pids, 'after slow headers')
        return 'unfinished headers closed after %.2f s%s' % closed
    finally:
        setup.close()


def scenario_slowloris_trickle(_seed):
    """header_timeout_ms is "the time allowed for a request's headers": a client that sends a byte
    every 200 ms and never ends its headers must be cut off too, not only a silent one."""
    setup = Setup('trickle', ['--http.header_timeout_ms=500'])
    try:
        sock = open_socket(setup.port)
        t0 = time.monotonic()
        line = b'GET /v1/stream HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ' + b'a' * 4000
        cut, sent = None, 0
        try:
            for i in range(len(line)):
                try:
                    sock.sendall(line[i:i + 1])
                    sent += 1
                except OSError:
                    cut = time.monotonic() - t0, ' (send failed)'
                    break
                cut = _wait_closed(sock, 0.2)
                if cut is not None:
                    cut = time.monotonic() - t0, cut[1]
                    break
                if time.monotonic() - t0 > 5:
                    break
        finally:
            sock.close()
        expect(cut is not None, 'headers trickled a byte every 200 ms (%d bytes so far) were still being read %.1f s '
               'later, 10 times header_timeout_ms=500: only silence is timed, so a client can hold a connection '
               'for max_header_bytes * 0.5 s' % (sent, time.monotonic() - t0))
        return 'trickled headers closed after %.2f s%s' % cut
    finally:
        setup.close()


def _wait_closed(sock, timeout):
    """(seconds until the server closed, what it sent) or None if still open after `timeout`."""
    t0 = time.monotonic()
    got = b''
    while time.monotonic() - t0 < timeout:
        sock.settimeout(max(0.01, timeout - (time.monotonic() - t0)))
        try:
            chunk = sock.recv(4096)
        except socket.timeout:
            return None
        except ConnectionResetError:
            return time.monotonic() - t0, ' (reset)'
        if not chunk:
            status = first_status(got)
            return time.monotonic() - t0, ' (HTTP %s)' % status if status else ''
        got += chunk
    return None


def scenario_tokens(_seed):
    setup = Setup('tokens')
    try:
        pids = setup.gateway.worker_pids()
        good = SseStream(setup.port, mint_token('good', ['mp_id:*']), name='good')
        good.wait_connected()
        narrow = mint_token('narrow', ['mp_id:1'])
        cases = [
            ('expired', mint_token('u', expires_in=-3600), '', 401),
            ('forged (another secret)', mint_token('u', secret='another-secret'), '', 401),
            ('alg none', mint_token('u', alg='none'), '', 401),
            ('HS512', mint_token('u', alg='HS512'), '', 401),
            ('no sub', mint_token('u', drop=('sub',)), '', 401),
            ('empty sub', mint_token(''), '', 401),
            ('no exp', mint_token('u', drop=('exp',)), '', 401),
            ('topics not an array', mint_token('u', claims={'topics': 'mp_id:1'}), '', 401),
            ('garbage', 'not-a-jwt', '', 401),
            ('escalation ?topics=mp_id:2', narrow, 'topics=mp_id:2', 403),
            ('escalation ?topics=mp_id:*', narrow, 'topics=' + urllib.parse.quote('mp_id:*'), 403),
            ('escalation ?topics=*', narrow, 'topics=*', 403),
            ('missing', None, '', 401),
        ]
        seen = []
        for what, token, q, want in cases:
            headers = [('Authorization', 'Bearer ' + token)] if token is not None else []
            r = curl(setup.port, '/v1/stream' + ('?' + q if q else ''), headers, 3)
            expect(r.status == want, '%s: HTTP %s, expected %s: %s' % (what, r.status, want, r.text()[:200]))
            try:
                body = r.json()
            except ValueError:
                raise TestFailure('%s: HTTP %s body is not JSON: %r' % (what, r.status, r.body[:200]))
            expect(isinstance(body.get('error'), str), '%s: body %r' % (what, body))
            expect(token is None or token not in r.text(), '%s: the error body quotes the token' % what)
            seen.append(str(r.status))
        # Sources and leeway that must work.
        ok = []
        for what, kwargs in (
                ('cookie', dict(headers=[('Cookie', 'a=b; pgfeed_token=%s' % mint_token('c', ['*']))])),
                ('?access_token=', dict(query='access_token=' + mint_token('q', ['*']))),
                ('exp 10 s ago, within the 30 s leeway', dict(token=mint_token('l', ['*'], expires_in=-10))),
                ('?topics= narrowing within the grant', dict(token=narrow, query='topics=mp_id:1'))):
            s = SseStream(setup.port, name=what, **kwargs)
            status = s.wait_status()
            expect(status == 200, '%s: HTTP %s, expected 200: %r' % (what, status, bytes(s.raw[:200])))
            s.wait_connected()
            s.close()
            ok.append(what)
        aid = setup.insert(1)[0]
        entry_id, _ = setup.wait_entry(aid)
        good.wait_event(lambda e: e.id == entry_id, 'the open stream to get %s' % entry_id)
        good.close()
        setup.alive_with(pids, 'after refused tokens')
        return '%d refused (%s); accepted: %s; the open stream went on' % (len(cases), ' '.join(seen), ', '.join(ok))
    finally:
        setup.close()


def scenario_malformed_requests(_seed):
    setup = Setup('malformed')
    try:
        pids = setup.gateway.worker_pids()
        token = mint_token('m', ['*'])
        good = SseStream(setup.port, token, name='good')
        good.wait_connected()
        auth = 'Authorization: Bearer %s\r\n' % token
        cases = [
            ('garbage request line', b'GARBAGE\r\n\r\n', None),
            ('binary junk', bytes(range(256)) * 4 + b'\r\n\r\n', None),
            ('no version', b'GET /v1/stream\r\n\r\n', None),
            ('HTTP/9.9', b'GET /v1/stream HTTP/9.9\r\nHost: x\r\n\r\n', None),
            ('POST /v1/stream', ('POST /v1/stream HTTP/1.1\r\nHost: x\r\n%sContent-Length: 3\r\n\r\nabc' % auth)
             .encode(), 405),
            ('unknown path', b'GET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', 404),
            ('HTTP/1.1 without Host', ('GET /v1/stream HTTP/1.1\r\n%s\r\n' % auth).encode(), 'any'),
            ('huge URI', b'GET /v1/stream?x=' + b'a' * 100000 + b' HTTP/1.1\r\nHost: x\r\n\r\n', '4xx'),
            ('%00 in the query', ('GET /v1/stream?topics=a%%00b HTTP/1.1\r\nHost: x\r\n%s\r\n' % auth).encode(), 400),
            ('bad chunked body', b'POST /v1/stream HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n',
             '4xx'),
            ('header without colon', b'GET /v1/stream HTTP/1.1\r\nHost: x\r\nNoColon\r\n\r\n', '4xx'),
            ('only CRLFs', b'\r\n' * 2000, None),
        ]
        seen = []
        for what, data, want in cases:
            raw, how = raw_exchange(setup.port, data, timeout=3)
            status = first_status(raw)
            label = 'HTTP %s' % status if status else 'closed' if how in ('closed', 'reset') else how
            seen.append('%s: %s' % (what, label))
            if want == 'any':
                expect(status is None or status < 500 or status == 503, '%s: %s' % (what, label))
            elif want == '4xx':
                expect(status is None and how in ('closed', 'reset') or status and 400 <= status < 500,
                       '%s: %s, expected a 4xx or a close' % (what, label))
            elif want is None:
                expect(status != 200 and (status is None or status < 500),
                       '%s: %s, expected a refusal or a close' % (what, label))
            else:
                expect(status == want, '%s: %s, expected %s: %r' % (what, label, want, raw[:200]))
            expect(setup.gateway.alive(), '%s took the daemon down' % what)
        aid = setup.insert(1)[0]
        entry_id, _ = setup.wait_entry(aid)
        good.wait_event(lambda e: e.id == entry_id, 'the open stream to get %s' % entry_id)
        s = SseStream(setup.port, token, name='after')
        s.wait_connected()
        close_all([good, s])
        setup.alive_with(pids, 'after malformed requests')
        return '; '.join(seen)
    finally:
        setup.close()


def scenario_slow_client(_seed):
    setup = Setup('slow', ['--http.high_watermark_bytes=65536'])
    fast = None
    try:
        token = mint_token('slow', ['mp_id:*'])
        slow = SseStream(setup.port, token, rcvbuf=4096, paused_after_connect=True, name='slow')
        slow.wait_connected()
        fast = ResumingClient(setup.port, mint_token('fast', ['mp_id:*']), 'fast')
        wait_until(lambda: fast.start_id, 'the fast client to connect')
        kind = 'k' * 3000  # a ~3 KB payload
        inserted = 0

        def slow_closed_metric():
            return setup.gateway.metrics().get('pgfeed_connections_closed_total', reason='slow_client')
        deadline = time.monotonic() + 60
        while slow_closed_metric() == 0:
            expect(time.monotonic() < deadline and inserted < 20000,
                   'after %d events of ~3 KB, no connection was closed as slow_client' % inserted)
            setup.insert(20, mp_id=5, kind=kind)
            inserted += 20
        closed_at = inserted
        setup.insert(20, mp_id=5, kind=kind)  # more after the close: the resume must get them
        last = settle(setup, 5)
        slow.resume()
        slow.wait_closed(30)
        expect(slow.how in ('closed', 'reset'), 'the slow stream ended with %s' % slow.how)
        got_first = slow.data_events()
        resume_id = slow.last_id()
        again = SseStream(setup.port, token, last_event_id=resume_id, name='slow-again')
        again.wait_connected()
        again.wait(lambda x: last in {e[0] for e in x.data_events()} or x.closed, 'the resume to reach %s' % last, 60)
        expect(not again.closed, 'the resumed stream (Last-Event-ID %s) was closed (%s) after %d of its events; '
               'pgfeed_connections_closed_total{reason="slow_client"} is now %d: the replay overflows the watermark' % (
                   resume_id, again.how, len(again.data_events()),
                   setup.gateway.metrics().get('pgfeed_connections_closed_total', reason='slow_client')))
        expected = setup.expected('slow', ['mp_id:*'], slow.connected_event().id)
        got_again = again.data_events()
        problems = compare_events(got_first + got_again, expected, 'slow client before and after')
        expect(not problems, '%s\nbefore the close: %d events %s..%s, last id %s (%s); resumed: connected %s, '
               '%d events %s..%s' % ('\n'.join(problems), len(got_first), got_first[0][0] if got_first else '-',
                                    got_first[-1][0] if got_first else '-', resume_id, slow.how,
                                    again.connected_event().id, len(got_again),
                                    got_again[0][0] if got_again else '-', got_again[-1][0] if got_again else '-'))
        fast.wait_for_id(last, 60)
        fast.stop()
        problems = compare_events(fast.snapshot(), setup.expected('fast', ['mp_id:*'], fast.start_id), 'fast client')
        expect(not problems, '\n'.join(problems))
        again.close()
        m = setup.gateway.metrics()
        return ('closed as slow_client after %d events (%s, metric %d); it had %d, resumed from %s and got %d more, '
                'none lost or twice; the fast reader reconnected %d times' % (
                    closed_at, slow.how, m.get('pgfeed_connections_closed_total', reason='slow_client'), len(got_first),
                    resume_id, len(again.data_events()), len(fast.connects) - 1))
    finally:
        if fast is not None:
            fast.stop()
        setup.close()


def scenario_burst_over_watermark(_seed):
    """Defaults (high_watermark_bytes 1 MiB, replay_page 500): one transaction commits 400
    activities with ~3 KB payloads (~1.2 MB). A reader that keeps up, and one resuming from before
    the burst, must both get every event (reconnecting as EventSource would when closed)."""
    setup = Setup('burst')
    clients = []
    try:
        g = setup.gateway
        live = ResumingClient(g.port, mint_token('live', ['mp_id:*']), 'live', reconnect_for=10)
        wait_until(lambda: live.start_id or live.error, 'the live reader to connect')
        clients.append(live)
        before = settle(setup, 5)
        setup.insert(400, mp_id=5, kind='k' * 3000)
        last = settle(setup, 5)
        resumer = ResumingClient(g.port, mint_token('resumer', ['mp_id:*']), 'resumer', first_last_event_id=before,
                                 reconnect_for=10)
        clients.append(resumer)
        problems = []
        deadline = time.monotonic() + 20
        for c, after in ((live, live.start_id), (resumer, before)):
            try:
                c.wait_for_id(last, max(0.1, deadline - time.monotonic()))
            except TestFailure as e:
                problems.append('%s: %s; it received %d of %d events over %d connections' % (
                    c.name, e, len(c.snapshot()), len(setup.expected(c.name, ['mp_id:*'], after)), len(c.connects)))
        slow = g.metrics().get('pgfeed_connections_closed_total', reason='slow_client')
        expect(not problems, '%s\npgfeed_connections_closed_total{reason="slow_client"} is %d: readers that keep up '
               'are closed as slow because one burst or one replay page is queued whole past the watermark' % (
                   '\n'.join(problems), slow))
        for c in clients:
            c.stop()
        problems = compare_events(live.snapshot(), setup.expected('live', ['mp_id:*'], live.start_id), 'live')
        problems += compare_events(resumer.snapshot(), setup.expected('resumer', ['mp_id:*'], before), 'resumer')
        expect(not problems, '\n'.join(problems))
        return 'both got all %d events; live reconnected %d times, the resumer %d; slow_client closes %d' % (
            len(resumer.snapshot()), len(live.connects) - 1, len(resumer.connects) - 1, slow)
    finally:
        for c in clients:
            c.stop()
        setup.close()


def scenario_sigterm_drain(_seed):
    setup = Setup('drain', ['--http.drain_retry_ms=1234'])
    curl_proc = None
    try:
        g = setup.gateway
        token = mint_token('d', ['*'])
        streams = open_streams(g.port, [mint_token('d%d' % i, ['*']) for i in range(3)])
        body_file = RUN.path('drain', 'curl-body')
        curl_proc = subprocess.Popen(['curl', '-sS', '-N', '--max-time', '60', '-o', body_file, '-H',
                                      'Authorization: Bearer ' + token, 'http://127.0.0.1:%d/v1/stream' % g.port],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(lambda: os.path.exists(body_file) and b'event: connected' in open(body_file, 'rb').read(),
                   'curl to connect', 10)
        # A client that stopped reading, its buffers full: it must not hold the exit up for long.
        stuck = SseStream(g.port, mint_token('stuck', ['mp_id:*']), rcvbuf=4096, paused_after_connect=True,
                          name='stuck')
        stuck.wait_connected()
        for _ in range(10):
            setup.insert(100, mp_id=5, kind='k' * 2000)
        settle(setup, 5)
        t0 = time.monotonic()
        g.signal(signal.SIGTERM)
        for s in streams:
            s.wait_closed(10)
            retries = [v for k, v in s.items() if k == 'retry']
            expect(retries and retries[-1] == 1234 and len(retries) >= 2,
                   '%s: retry: values %s, expected 3000 then the drain retry 1234' % (s, retries))
            expect(s.how == 'closed', '%s ended with %s, not a clean close' % (s, s.how))
        curl_proc.wait(10)
        with open(body_file, 'rb') as f:
            body = f.read()
        expect(body.endswith(b'retry: 1234\n\n'), 'curl got %r at the end' % body[-80:])
        try:
            status = g.proc.wait(15)
        except subprocess.TimeoutExpired:
            raise TestFailure('still running 15 s after SIGTERM:\n%s' % g.log_tail())
        took = time.monotonic() - t0
        expect(status == 0, 'exit status %s after SIGTERM:\n%s' % (status, g.log_tail()))
        stuck.resume()
        stuck.wait_closed(10)
        return ('4 streams got retry: 1234 and were closed; with a 5th stream not reading, exit 0 %.2f s after '
                'SIGTERM' % took)
    finally:
        if curl_proc is not None and curl_proc.poll() is None:
            curl_proc.kill()
        setup.close()


def scenario_sighup_reload(_seed):
    ini = RUN.path('reload', 'notifier.ini')

    def write_ini(per_user, secrets, origins):
        with open(ini + '.tmp', 'w') as f:
            f.write('[limits]\nconnections_per_user = %d\n\n[auth]\nhs256_secrets = %s\n\n[http]\ncors_origins = %s\n'
                    % (per_user, secrets, origins))
        os.rename(ini + '.tmp', ini)
    write_ini(1, SECRET, '')
    setup = Setup('reload', secret=None, config=ini)
    try:
        g = setup.gateway
        token = mint_token('r', ['*'])
        new_token = mint_token('r2', ['*'], secret='rotated-secret')
        first = SseStream(g.port, token, headers=[('Origin', 'http://reload.example')], name='first')
        first.wait_connected()
        expect(first.header('access-control-allow-origin') is None, 'ACAO before cors_origins was set')
        refused(g.port, token, expected_status=429, what='the 2nd stream with connections_per_user=1')
        refused(g.port, new_token, expected_status=401, what='a token of a secret not configured yet')
        write_ini(2, SECRET + ',rotated-secret', 'http://reload.example')
        g.signal(signal.SIGHUP)
        keep = []
        t0 = time.monotonic()
        wait_until(lambda: _admit(g.port, token, keep), 'a 2nd stream of the user after SIGHUP raised the limit', 10, 0.05)
        took = time.monotonic() - t0
        refused(g.port, token, expected_status=429, what='the 3rd stream with connections_per_user=2')
        s = SseStream(g.port, new_token, headers=[('Origin', 'http://reload.example')], name='rotated')
        expect(s.wait_status() == 200, 'a token of the added secret after SIGHUP: HTTP %s' % s.status)
        expect(s.header('access-control-allow-origin') == 'http://reload.example',
               'the origin added by SIGHUP gets ACAO %r' % s.header('access-control-allow-origin'))
        keep.append(s)
        aid = setup.insert(1)[0]
        entry_id, _ = setup.wait_entry(aid)
        first.wait_event(lambda e: e.id == entry_id, 'the stream opened before SIGHUP to go on')
        close_all([first] + keep)
        expect(g.alive(), 'exited after SIGHUP:\n%s' % g.log_tail())
        return 'connections_per_user 1 -> 2, a secret and an origin added; applied %.2f s after SIGHUP' % took
    finally:
        setup.close()


def scenario_worker_kill(seed):
    setup = Setup('worker_kill', ['--http.retry_ms=100'])
    writer = None
    clients = []
    try:
        g = setup.gateway
        clients = [ResumingClient(g.port, mint_token('w%d' % i, ['mp_id:*']), 'w%d' % i) for i in range(8)]
        for c in clients:
            wait_until(lambda: c.start_id or c.error, '%s to connect' % c.name)
        original = g.worker_pids()
        expect(len(original) == 2, 'worker pids %s, expected 2' % original)
        writer = Writer(setup.db.name, seed, ['w0', 'w1'], target=100000, pause=0.01).start()
        wait_until(lambda: len(read_stream(setup.client)) > 50, 'the writer\'s events in the stream', 20, 0.05)
        kills = []
        victims_clients = set()
        for victim in list(original):
            owners = {c.name: socket_owner(g.port, c.stream.local_port, g.worker_pids()) for c in clients}
            victims_clients |= {n for n, p in owners.items() if p == victim}
            before = len(read_stream(setup.client))
            os.kill(victim, signal.SIGKILL)
            t0 = time.monotonic()
            now = wait_until(lambda: (lambda p: p if len(p) == 2 and victim not in p else None)(g.worker_pids()),
                             'the supervisor to replace worker %d' % victim, 15, 0.02)
            wait_until(lambda: http_request(g.port, '/healthz', timeout=2).status == 200, '/healthz after the kill', 10)
            took = time.monotonic() - t0
            wait_until(lambda: len(read_stream(setup.client)) > before + 20, 'events to flow after the kill', 20, 0.05)
            kills.append('worker %d (%d clients) -> %s in %.2f s' % (victim, list(owners.values()).count(victim),
                                                                     now, took))
        expect(g.alive(), 'the supervisor died:\n%s' % g.log_tail())
        writer.stop()
        last = settle(setup)
        problems = []
        for c in clients:
            c.wait_for_id(last, 30)
            c.stop()
            problems += compare_events(c.snapshot(), setup.expected(c.name, ['mp_id:*'], c.start_id), c.name)
        expect(not problems, '\n'.join(problems))
        reconnected = [c.name for c in clients if len(c.connects) > 1]
        expect(victims_clients <= set(reconnected), 'clients %s of killed workers did not reconnect'
               % sorted(victims_clients - set(reconnected)))
        expect(not [c for c in clients if c.resets], 'resets: %s' % [(c.name, c.resets) for c in clients if c.resets])
        restarts = g.metrics().get('pgfeed_worker_restarts_total')
        expect(restarts >= 2, 'pgfeed_worker_restarts_total is %s after 2 kills' % restarts)
        return '%s; %d events written; %d clients (%s reconnected) each got its events once, in order' % (
            '; '.join(kills), writer.events, len(clients), ','.join(reconnected))
    finally:
        if writer is not None:
            writer.stop_event.set()
        for c in clients:
            c.stop()
        setup.close()


def scenario_metrics_readyz(_seed):
    setup = Setup('metrics', ['--ready.probe_interval_ms=200'])
    try:
        g = setup.gateway
        r = g.get('/metrics')
        expect(r.status == 200 and (r.header('content-type') or '').startswith('text/plain'),
               'GET /metrics: %s, Content-Type %s' % (r.status, r.header('content-type')))
        expect('version=0.0.4' in r.header('content-type'), 'Content-Type %s lacks version=0.0.4' % r.header(
            'content-type'))
        m0 = g.metrics()
        expect(not m0.problems, 'not valid Prometheus text:\n%s' % '\n'.join(m0.problems[:10]))
        names = {n for n, _ in m0.samples}
        for name in ('pgfeed_connections', 'pgfeed_connections_opened_total', 'pgfeed_requests_rejected_total',
                     'pgfeed_http_requests_total', 'pgfeed_events_sent_total', 'pgfeed_worker_restarts_total'):
            expect(name in names, '%s missing from /metrics; it has %s' % (name, sorted(names)))
        streams = open_streams(g.port, [mint_token('m%d' % i, ['mp_id:*']) for i in range(3)])
        refused(g.port, mint_token('x', expires_in=-3600), expected_status=401, what='expired')
        refused(g.port, None, expected_status=401, what='missing')
        refused(g.port, mint_token('x', ['mp_id:1']), query='topics=mp_id:2', expected_status=403, what='escalation')
        expect(g.get('/nope').status == 404, '/nope')
        expect(g.get('/v1/stream', method='POST').status == 405, 'POST')
        ids = setup.insert(5, mp_id=1)
        entry_id, _ = setup.wait_entry(ids[-1])
        for s in streams:
            s.wait_event(lambda e: e.id == entry_id, 'the 5 events')

        def delta(m, name, **labels):
            return m.get(name, **labels) - m0.get(name, **labels)
        wanted = [('pgfeed_connections', {}, 3, False), ('pgfeed_connections_opened_total', {}, 3, True),
                  ('pgfeed_requests_rejected_total', {'status': '401'}, 2, True),
                  ('pgfeed_requests_rejected_total', {'status': '403'}, 1, True),
                  ('pgfeed_requests_rejected_total', {'status': '404'}, 1, True),
                  ('pgfeed_requests_rejected_total', {'status': '405'}, 1, True),
                  ('pgfeed_events_sent_total', {'kind': 'activity'}, 15, True),
                  ('pgfeed_events_sent_total', {'kind': 'connected'}, 3, True)]
        scrapes = []
        for _ in range(6):  # several scrapes: the kernel spreads them over the workers
            m = g.metrics()
            expect(not m.problems, 'not valid Prometheus text:\n%s' % '\n'.join(m.problems[:10]))
            workers = sorted({dict(ls).get('worker') for (n, ls) in m.samples if n == 'pgfeed_connections'})
            expect(len(workers) == 2, 'pgfeed_connections has worker labels %s, expected one per worker' % workers)
            got = []
            for name, labels, want, is_delta in wanted:
                value = delta(m, name, **labels) if is_delta else m.get(name, **labels)
                got.append(value)
                expect(value == want, '%s%s is %s%s, expected %s\n%s' % (
                    name, labels, '+' if is_delta else '', value, want,
                    '\n'.join(l for l in m.text.splitlines() if l.startswith(name))))
            stream_hits = m.get('pgfeed_http_requests_total') - m0.get('pgfeed_http_requests_total')
            expect(stream_hits >= 8, 'pgfeed_http_requests_total grew by %s' % stream_hits)
            redis_up = m.series('pgfeed_redis_up')
            expect(redis_up and all(v == 1 for v in redis_up.values()), 'pgfeed_redis_up %s' % redis_up)
            scrapes.append(got)
        streams[0].close()
        wait_until(lambda: g.metrics().get('pgfeed_connections') == 2, 'pgfeed_connections to drop to 2', 10)
        m = g.metrics()
        expect(delta(m, 'pgfeed_connections_closed_total', reason='client') == 1,
               'closed_total{reason="client"} grew by %s' % delta(m, 'pgfeed_connections_closed_total',
                                                                   reason='client'))
        # /readyz
        r = g.get('/readyz')
        expect(r.status == 200 and r.json().get('mode') == 'push' and r.json().get('status') == 'ready',
               '/readyz with everything up: %s' % r)
        expect(g.get('/healthz').json().get('status') == 'ok', '/healthz %s' % g.get('/healthz'))
        setup.redis.stop()
        t0 = time.monotonic()
        r = wait_until(lambda: (lambda x: x if x.status == 503 else None)(g.get('/readyz')),
                       '/readyz to say 503 with redis-server stopped', 20, 0.05)
        body = r.json()
        expect(body.get('mode') == 'poll' and body.get('status') == 'degraded' and body.get('redis') is False,
               '/readyz with redis down: %s' % body)
        took = time.monotonic() - t0
        down = SseStream(g.port, mint_token('down', ['*']), name='down')
        down_status = down.wait_status()
        down.close()
        expect(down_status == 503, 'a new stream with redis down: HTTP %s, expected 503' % down_status)
        expect(g.get('/healthz').status == 200, '/healthz with redis down')
        setup.redis.start()
        wait_until(lambda: g.get('/readyz').status == 200, '/readyz to be ready again with redis back', 30, 0.1)
        close_all(streams)
        return ('valid text, %d scrapes agree %s; readyz push -> poll %.2f s after redis stopped (%s), stream 503, '
                'back to push' % (len(scrapes), scrapes[0], took, body))
    finally:
        setup.close()


def scenario_cors(_seed):
    origins = ['http://localhost:3000', 'https://app.example']
    setup = Setup('cors', ['--http.cors_origins=' + ','.join(origins)])
    try:
        token = mint_token('c', ['*'])
        results = []
        for origin in origins + ['HTTP://LOCALHOST:3000']:
            r = curl(setup.port, '/v1/stream', [('Authorization', 'Bearer ' + token), ('Origin', origin)], 1)
            expect(r.status == 200, '%s: HTTP %s' % (origin, r.status))
            expect(r.header('access-control-allow-origin') == origin,
                   'Origin %s: Access-Control-Allow-Origin %r' % (origin, r.header('access-control-allow-origin')))
            expect((r.header('access-control-allow-credentials') or '').lower() == 'true',
                   'Origin %s: Access-Control-Allow-Credentials %r' % (
                       origin, r.header('access-control-allow-credentials')))
            expect('origin' in (r.header('vary') or '').lower(), 'Origin %s: Vary %r' % (origin, r.header('vary')))
            results.append(origin)
        for origin in ('http://evil.example', 'http://localhost:3001', 'null', 'https://app.example.evil.com'):
            r = curl(setup.port, '/v1/stream', [('Authorization', 'Bearer ' + token), ('Origin', origin)], 1)
            expect(r.status == 200, '%s: HTTP %s' % (origin, r.status))
            for name in ('access-control-allow-origin', 'access-control-allow-credentials'):
                expect(r.header(name) is None, 'Origin %s: %s %r' % (origin, name, r.header(name)))
        r = curl(setup.port, '/v1/stream', [('Origin', origins[0])], 3)
        refusal = 'a 401 for an allowed origin %s ACAO' % ('has' if r.header('access-control-allow-origin') else 'lacks')
        return 'ACAO for %s; none for 4 others; %s' % (', '.join(results), refusal)
    finally:
        setup.close()


SCENARIOS = [
    ('live_events_curl', scenario_live_events_curl),
    ('live_events_eventsource', scenario_live_events_eventsource),
    ('eventsource_resume', scenario_eventsource_resume),
    ('private_events', scenario_private_events),
    ('reset', scenario_reset),
    ('limit_per_user', scenario_limit_per_user),
    ('limit_total', scenario_limit_total),
    ('limit_rate', scenario_limit_rate),
    ('limit_header_size', scenario_limit_header_size),
    ('slowloris', scenario_slowloris),
    ('slowloris_trickle', scenario_slowloris_trickle),
    ('tokens', scenario_tokens),
    ('malformed_requests', scenario_malformed_requests),
    ('slow_client', scenario_slow_client),
    ('burst_over_watermark', scenario_burst_over_watermark),
    ('sigterm_drain', scenario_sigterm_drain),
    ('sighup_reload', scenario_sighup_reload),
    ('worker_kill', scenario_worker_kill),
    ('metrics_readyz', scenario_metrics_readyz),
    ('cors', scenario_cors),
]


def main():
    seed, chosen = choose_scenarios(LABEL, SCENARIOS, sys.argv)
    start_watchdog(120 + 60 * len(chosen), LABEL, cleanup=RUN.finish)
    return run_scenarios(LABEL, SCENARIOS, chosen, seed, SETUPS, lambda setup: setup.gateways)


if __name__ == '__main__':
    sys.exit(main())
