#!/usr/bin/env python3
"""The gateway against hostile clients and hostile stream entries: a request trickled under its
deadline (a keep-alive connection's later request, a POST body), one client address holding
connections, a worker at its file limit (RLIMIT_NOFILE lowered), a body framed two ways (request
smuggling), token claims (nbf, aud, iss), a Last-Event-ID after every id, stream entries with
absurd `at` values. Every connection goes to 127.0.0.0/8, bounded in count and time.

Run by test/run-notifier-tests.sh; alone: python3 test/notifier/gateway_abuse.py [SEED [SCENARIO...]]
with PGHOST set as that script sets it.
"""
import json
import os
import re
import signal
import socket
import sys
import threading
import time

from _servers import (RUN, STREAM, SseStream, TestFailure, choose_scenarios, http_request, mint_token, open_socket,
                      raw_exchange, request_bytes, run_scenarios, wait_until)
from _harness import start_watchdog
from sse_gateway import SETUPS, Setup, expect, first_status, settle

LABEL = 'gateway_abuse'
CLOCK_TICKS = os.sysconf('SC_CLK_TCK')


def _responses(raw):
    """The status of every response head in `raw`, in order (a head may follow a body directly)."""
    return [int(m.group(1)) for m in re.finditer(rb'HTTP/1\.[01] (\d{3}) ', raw)]


def _read_response(sock, timeout=5.0):
    """One whole response with a Content-Length from a keep-alive connection: its status."""
    got = b''
    deadline = time.monotonic() + timeout
    while True:
        head, sep, body = got.partition(b'\r\n\r\n')
        if sep:
            length = [int(line.split(b':', 1)[1]) for line in head.split(b'\r\n')
                      if line.lower().startswith(b'content-length:')]
            if length and len(body) >= length[0]:
                return first_status(got)
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        chunk = sock.recv(65536)
        if not chunk:
            raise TestFailure('closed before a whole response: %r' % got[:200])
        got += chunk


def _trickle(sock, data, every, give_up):
    """Sends `data` a byte at a time, one every `every` seconds, until the server closes the
    connection or `give_up` seconds pass: (seconds until closed or None, bytes sent)."""
    t0 = time.monotonic()
    for sent in range(len(data)):
        try:
            sock.sendall(data[sent:sent + 1])
        except OSError:
            return time.monotonic() - t0, sent
        sock.settimeout(every)
        try:
            if not sock.recv(65536):  # what it answers, then the end of the stream
                return time.monotonic() - t0, sent + 1
            while sock.recv(65536):
                pass
            return time.monotonic() - t0, sent + 1
        except socket.timeout:
            pass
        except ConnectionResetError:
            return time.monotonic() - t0, sent + 1
        if time.monotonic() - t0 > give_up:
            break
    return None, len(data)


def _closed_within(sock, timeout):
    """Whether the server ends the connection (an answer, then the end of the stream) in time."""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            if not sock.recv(65536):
                return True
    except socket.timeout:
        return False
    except ConnectionResetError:
        return True
    return False


def _cpu_seconds(pid):
    with open('/proc/%d/stat' % pid) as f:
        fields = f.read().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime


def _open_files(pid):
    return len(os.listdir('/proc/%d/fd' % pid))


def scenario_request_deadlines(_seed):
    """http.header_timeout_ms bounds every request, not only the first on a connection nor only
    silence: a byte every 100 ms keeps evhttp's read timeout (600 ms) from ever firing."""
    setup = Setup('deadlines', ['--http.header_timeout_ms=600', '--http.heartbeat_ms=200'], workers=1)
    try:
        port = setup.port
        pids = setup.gateway.worker_pids()
        sock = open_socket(port)
        try:
            for _ in range(5):  # prompt requests on one connection: each gets a fresh deadline
                sock.sendall(request_bytes(port, '/healthz'))
                status = _read_response(sock)
                expect(status == 200, 'a prompt keep-alive request: HTTP %s' % status)
            sock.settimeout(5)
            try:
                idle_end = sock.recv(65536)
            except ConnectionResetError:
                idle_end = b''
            expect(idle_end == b'', 'an idle keep-alive connection got %r, not a quiet close' % idle_end[:100])
        finally:
            sock.close()
        token = mint_token('slow', ['*'])
        post = ('POST /v1/read HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\n'
                'Content-Type: application/json\r\nContent-Length: 4000\r\n\r\n' % token).encode()
        trickled = [
            ('the second request\'s headers', True,
             b'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ' + b'a' * 400),
            ('the second request\'s POST body', True, post + b'[' * 400),
            ('the first request\'s POST body', False, post + b'[' * 400),
        ]
        seen = []
        for what, after_a_request, data in trickled:
            sock = open_socket(port)
            try:
                if after_a_request:
                    sock.sendall(request_bytes(port, '/healthz'))
                    expect(_read_response(sock) == 200, '%s: the first request failed' % what)
                head = data.index(b'\r\n\r\n') + 4 if data.startswith(b'POST') else 0
                sock.sendall(data[:head])  # a body's headers come whole, its bytes trickle
                cut, sent = _trickle(sock, data[head:], 0.1, 6)
            finally:
                sock.close()
            expect(cut is not None, '%s trickled a byte every 100 ms: still read %d bytes and 6 s later, ten times '
                   'header_timeout_ms=600' % (what, sent))
            seen.append('%s cut after %.2f s' % (what, cut))
        stream = SseStream(port, token, name='long')
        try:
            stream.wait_connected()
            stream.wait(lambda s: s.closed or sum(1 for k, _ in s.items() if k == 'comment') >= 8,
                        '8 heartbeats (1.6 s, past the 600 ms deadline)', 10)
            expect(not stream.closed, 'a stream was closed (%s) after its request had arrived' % stream.how)
        finally:
            stream.close()
        m = setup.gateway.metrics()
        timeouts = m.get('pgfeed_requests_rejected_total', status='408', reason='request_timeout')
        expect(timeouts >= 3, '%d requests counted as request_timeout, expected 3' % timeouts)
        setup.alive_with(pids, 'after trickled requests')
        return 'an idle keep-alive connection closed quietly; ' + '; '.join(seen) + '; a stream outlives the deadline'
    finally:
        setup.close()


def scenario_connections_per_address(_seed):
    setup = Setup('per_address', ['--limits.connections_per_address=5', '--http.header_timeout_ms=30000'], workers=1)
    held = []
    stream = None
    try:
        port = setup.port
        for _ in range(5):
            held.append(open_socket(port, source_ip='127.0.0.21'))
        for _ in range(4):
            held.append(open_socket(port, source_ip='127.0.0.23'))
        stream = SseStream(port, mint_token('addr', ['*']), source_ip='127.0.0.23', name='counted')
        stream.wait_connected()
        results = []
        for ip in ('127.0.0.21', '127.0.0.23'):
            raw, how = raw_exchange(port, request_bytes(port, '/healthz'), timeout=5, source_ip=ip)
            status = first_status(raw)
            expect(how in ('closed', 'reset') and status in (None, 429),
                   'a 6th connection from %s with connections_per_address=5: HTTP %s, %s' % (ip, status, how))
            results.append('%s: %s' % (ip, status or how))
        other = http_request(port, '/healthz', source_ip='127.0.0.22')
        expect(other.status == 200, 'another address got HTTP %s' % other.status)
        held.pop(0).close()
        wait_until(lambda: http_request(port, '/healthz', source_ip='127.0.0.21', timeout=2).status == 200,
                   'a connection from 127.0.0.21 once one of its 5 closed', 5, 0.05)
        m = setup.gateway.metrics()
        refused = m.get('pgfeed_requests_rejected_total', status='429', reason='address_limit')
        expect(refused >= 2, '%d connections counted as address_limit, expected 2' % refused)
        return '6th connection refused (%s), a stream counted; another address served; served again after a ' \
               'close' % ', '.join(results)
    finally:
        for sock in held:
            sock.close()
        if stream:
            stream.close()
        setup.close()


def scenario_file_limit(_seed):
    """At RLIMIT_NOFILE the worker pauses accepting instead of spinning on EMFILE, keeps files for its
    own sessions, logs a line now and then, and serves the clients that waited once files free up."""
    nofile = 256
    setup = Setup('files', ['--limits.connections_per_address=100000', '--http.header_timeout_ms=60000'],
                  workers=1, nofile=nofile)
    held = []
    try:
        g = setup.gateway
        port = g.port
        pids = g.worker_pids()
        worker = pids[0]
        for _ in range(300):  # more than the worker may hold; the rest wait in the listen queue
            held.append(open_socket(port, source_ip='127.0.0.31'))
        wait_until(lambda: _open_files(worker) >= nofile - 64, 'the worker to hold %d files' % (nofile - 64), 10, 0.05)
        log_before = g.log_since_start()
        cpu_before, t0 = _cpu_seconds(worker), time.monotonic()
        wait_until(lambda: time.monotonic() - t0 >= 2, 'a 2 s window', 5, 0.05)
        cpu = (_cpu_seconds(worker) - cpu_before) / (time.monotonic() - t0)
        window = g.log_since_start()[len(log_before):]
        files = _open_files(worker)
        expect(cpu < 0.3, 'the worker used %.0f%% of a CPU over 2 s at its file limit (a busy accept loop)' %
               (100 * cpu))
        accept_errors = window.count('Error from accept')
        pause_lines = window.count('not accepting connections')
        expect(accept_errors == 0 and pause_lines <= 1, '%d lines "Error from accept", %d "not accepting" in 2 s' % (
            accept_errors, pause_lines))
        expect(files <= nofile - 32, 'the worker holds %d of its %d files: none kept for its own sessions' % (
            files, nofile))
        expect('not accepting connections' in g.log_since_start(), 'nothing logged about the pause')
        answer = {}

        def waiting_client():
            try:
                answer['status'] = http_request(port, '/healthz', timeout=20, source_ip='127.0.0.32').status
            except Exception as e:  # noqa: BLE001 -- reported below
                answer['error'] = e
        client = threading.Thread(target=waiting_client, daemon=True)
        client.start()
        for sock in held:
            sock.close()
        held.clear()
        client.join(20)
        expect(answer.get('status') == 200, 'a client waiting while the worker was full: %s' % answer)
        setup.alive_with(pids, 'at the file limit')
        return '%.1f%% CPU and %d files of %d at the limit, %d log line(s); the waiting client served' % (
            100 * cpu, files, nofile, pause_lines)
    finally:
        for sock in held:
            sock.close()
        setup.close()


def scenario_framing(_seed):
    setup = Setup('framing', workers=1)
    try:
        port = setup.port
        token = mint_token('framing', ['*'])
        head = ('POST /v1/read HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\n'
                'Content-Type: application/json\r\n' % token).encode()
        smuggled = b'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n'
        cases = [
            ('two different Content-Length', b'Content-Length: 2\r\nContent-Length: 41\r\n\r\n{}' + smuggled),
            ('Content-Length twice, same value', b'Content-Length: 2\r\nContent-Length: 2\r\n\r\n{}' + smuggled),
            ('a Content-Length list', b'Content-Length: 2, 41\r\n\r\n{}' + smuggled),
            ('Content-Length with chunked', b'Content-Length: 41\r\nTransfer-Encoding: chunked\r\n\r\n'
             b'2\r\n{}\r\n0\r\n\r\n' + smuggled),
            ('chunked after gzip', b'Transfer-Encoding: gzip, chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n' + smuggled),
        ]
        seen = []
        for what, rest in cases:
            raw, how = raw_exchange(port, head + rest, timeout=5)
            statuses = _responses(raw)
            expect(statuses in ([400], []) and how in ('closed', 'reset'),
                   '%s: responses %s, connection %s; expected one 400 and a close (a second answer is the '
                   'smuggled request)' % (what, statuses, how))
            seen.append('%s: %s' % (what, statuses[0] if statuses else how))
        body = b'{"ids": [1]}'
        fine = head + b'Content-Length: %d\r\n\r\n' % len(body) + body + request_bytes(port, '/healthz', headers=[
            ('Connection', 'close')])
        raw, how = raw_exchange(port, fine, timeout=5)
        expect(_responses(raw) == [200, 200], 'a well-framed POST then a GET on one connection: %s' % _responses(raw))
        m = setup.gateway.metrics()
        counted = m.get('pgfeed_requests_rejected_total', status='400', reason='framing')
        # evhttp refuses a Content-Length list itself; the others reach the framing check.
        expect(counted >= 3, '%d requests counted as framing, expected 3 or more' % counted)
        return '; '.join(seen) + '; a well-framed pair served'
    finally:
        setup.close()


def scenario_token_claims(_seed):
    ini = RUN.path('claims', 'notifier.ini')

    def write_ini(audience):
        with open(ini, 'w') as f:
            f.write('[auth]\naudience = %s\nissuer = https://app.test\nleeway_seconds = 30\n' % audience)
    write_ini('pgfeed')
    setup = Setup('claims', config=ini)
    try:
        port = setup.port
        now = int(time.time())
        ours = {'aud': 'pgfeed', 'iss': 'https://app.test'}

        def status(claims, what):
            s = SseStream(port, mint_token('c', ['*'], claims=claims), name=what)
            try:
                return s.wait_status()
            finally:
                s.close()
        cases = [
            ('aud and iss as configured', ours, 200),
            ('aud among several', dict(ours, aud=['billing', 'pgfeed']), 200),
            ('nbf within the leeway', dict(ours, nbf=now + 10), 200),
            ('nbf to come', dict(ours, nbf=now + 600), 401),
            ('nbf not a number', dict(ours, nbf='soon'), 401),
            ('no aud', {'iss': 'https://app.test'}, 401),
            ('another aud', dict(ours, aud='billing'), 401),
            ('no iss', {'aud': 'pgfeed'}, 401),
            ('another iss', dict(ours, iss='https://evil.test'), 401),
        ]
        for what, claims, want in cases:
            got = status(claims, what)
            expect(got == want, '%s: HTTP %s, expected %s' % (what, got, want))
        write_ini('other')
        setup.gateway.signal(signal.SIGHUP)
        wait_until(lambda: status(ours, 'after reload') == 401, 'a token for the old audience refused after SIGHUP',
                   10, 0.05)
        expect(status(dict(ours, aud='other'), 'new audience') == 200, 'the new audience refused after SIGHUP')
        quiet = setup.new_gateway(secret=None)
        expect('no [auth] hs256_secrets' in quiet.log_since_start(), 'no warning when started without a secret:\n%s'
               % quiet.log_tail())
        return '%d claim cases; audience reloaded on SIGHUP; a warning without secrets' % len(cases)
    finally:
        setup.close()


def scenario_hostile_entries(_seed):
    setup = Setup('hostile')
    try:
        pids = setup.gateway.worker_pids()
        token = mint_token('hostile', ['*'])
        beyond = SseStream(setup.port, token, last_event_id='18446744073709551615-18446744073709551615',
                           name='beyond')
        reset = beyond.wait_event(lambda e: e.event == 'reset', 'event: reset for a Last-Event-ID after every id')
        expect(json.loads(reset.data).get('reason') == 'stream_gone', 'reset %s' % reset.data)
        live = SseStream(setup.port, token, name='live')
        live.wait_connected()
        m0 = setup.gateway.metrics()
        absurd = ['-9223372036854775808', '9223372036854775807', '99999999999999999999', '-1000000000000000000',
                  '0', 'soon', '']
        for i, at in enumerate(absurd):
            setup.client.xadd(STREAM, {'kind': 'activity', 'topic': 'mp_id:1', 'event_id': str(900000 + i),
                                       'at': at, 'data': json.dumps({'hand': i})})
        sentinel = settle(setup)
        for s in (beyond, live):
            s.wait_event(lambda e: e.id == sentinel, 'the sentinel after the hand-written entries')
            hands = sorted(json.loads(e.data)['hand'] for e in s.events(('activity',)) if 'hand' in e.data)
            expect(hands == list(range(len(absurd))), '%s got hand-written entries %s' % (s, hands))
        m = setup.gateway.metrics()
        waited = m.get('pgfeed_delivery_latency_seconds_sum') - m0.get('pgfeed_delivery_latency_seconds_sum')
        expect(waited < 60, 'the delivery latency sum grew by %.0f s for a few events: absurd at values counted'
               % waited)
        setup.alive_with(pids, 'after hand-written entries')
        beyond.close()
        live.close()
        return 'reset (stream_gone) after the largest id; %d absurd at values delivered, not timed' % len(absurd)
    finally:
        setup.close()


def scenario_replay_budget(_seed):
    """One token reconnecting again and again with an old Last-Event-ID, each time replaying a long
    stream: limits.replays_burst replays start, the others get 429 with Retry-After and are
    counted, while streams without a Last-Event-ID and another user's replay go on."""
    burst, attempts, entries = 3, 15, 20000
    setup = Setup('replays', ['--limits.replays_burst=%d' % burst, '--limits.replays_per_minute=1',
                              '--limits.connections_per_user=100'], workers=1)
    try:
        port = setup.port
        pipe = setup.client.pipeline(transaction=False)
        for i in range(entries):
            pipe.xadd(STREAM, {'kind': 'activity', 'topic': 'mp_id:1', 'event_id': str(800000 + i),
                               'at': '0', 'data': json.dumps({'filler': i})})
        ids = pipe.execute()
        oldest, newest = ids[0], ids[-1]
        setup.gateway.wait_streams_ready()
        token = mint_token('replayer', ['*'])
        statuses, retry_after = [], []
        for i in range(attempts):
            s = SseStream(port, token, last_event_id=oldest, name='replay%d' % i)
            try:
                status = s.wait_status()
                statuses.append(status)
                if status == 200:
                    s.wait_event(lambda e: e.event == 'activity', 'a replayed event')
                else:
                    retry_after.append(s.header('Retry-After'))
            finally:
                s.close()
        started = statuses.count(200)
        refused = statuses.count(429)
        # replays_per_minute=1 may refill one token while this runs.
        expect(burst <= started <= burst + 1 and started + refused == attempts,
               '%d reconnects with an old Last-Event-ID and replays_burst=%d: statuses %s' % (attempts, burst,
                                                                                            statuses))
        expect(all(r and r.isdigit() and int(r) >= 1 for r in retry_after), 'Retry-After of the 429s: %s' %
               retry_after)
        live = SseStream(port, token, name='no replay')
        try:
            live.wait_connected()
        finally:
            live.close()
        other = SseStream(port, mint_token('bystander', ['*']), last_event_id=oldest, name='other user')
        try:
            other.wait_event(lambda e: e.id == newest, 'another user\'s whole replay', 60)
        finally:
            other.close()
        m = setup.gateway.metrics()
        counted_refused = m.get('pgfeed_requests_rejected_total', status='429', reason='replay_limit')
        counted_replays = m.get('pgfeed_replays_total')
        expect(counted_refused == refused, '%d replays refused, %d counted' % (refused, counted_refused))
        expect(counted_replays == started + 1, '%d replays started, %d counted' % (started + 1, counted_replays))
        return '%d of %d replays of %d entries started, %d refused (Retry-After %s); a stream without ' \
               'Last-Event-ID and another user\'s replay served' % (started, attempts, entries, refused,
                                                                      retry_after[0] if retry_after else '-')
    finally:
        setup.close()


SCENARIOS = [(name[len('scenario_'):], fn) for name, fn in list(globals().items()) if name.startswith('scenario_')]


def main():
    seed, chosen = choose_scenarios(LABEL, SCENARIOS, sys.argv)
    start_watchdog(120 + 60 * len(chosen), LABEL, cleanup=RUN.finish)
    return run_scenarios(LABEL, SCENARIOS, chosen, seed, SETUPS, lambda setup: setup.gateways)


if __name__ == '__main__':
    sys.exit(main())
