#!/usr/bin/env python3
"""The gateway behind nginx, as notifier/examples/nginx.conf sets it up (its ports and certificate
paths replaced): TLS ends at nginx with a self-signed certificate made here by openssl, SSE streams
go through live and resume with Last-Event-ID, and http.trusted_proxies makes the per-address
connection cap count each real client: two clients of nginx are limited apart, an X-Forwarded-For
a client sends through nginx names nobody, and one sent straight to the notifier by a peer that is
not a trusted proxy is ignored. Clients are told apart by their loopback source address
(127.0.0.2, ...); nginx connects to the notifier from 127.0.0.1. nginx runs in the foreground with
its pid, logs and temporary files in the run directory.

Run by test/run-notifier-tests.sh; alone: python3 test/notifier/reverse_proxy.py [SEED [SCENARIO...]]
with PGHOST set as that script sets it.
"""
import json
import os
import signal
import ssl
import subprocess
import sys

from _servers import (NOTIFIER_BIN, RUN, SseStream, TestFailure, choose_scenarios, free_port, mint_token, open_socket,
                      process_gone, run_scenarios, wait_until)
from _harness import start_watchdog
from sse_gateway import SETUPS, Setup, expect

LABEL = 'reverse_proxy'
ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
EXAMPLE = os.path.join(ROOT, 'notifier', 'examples', 'nginx.conf')

# The main configuration around the example: nginx in the foreground, everything it writes here.
MAIN_CONF = '''daemon off;
worker_processes 1;
pid %(dir)s/nginx.pid;
error_log %(dir)s/error.log info;
events { worker_connections 256; }
http {
    access_log %(dir)s/access.log;
    client_body_temp_path %(dir)s/body;
    proxy_temp_path %(dir)s/proxy;
    fastcgi_temp_path %(dir)s/fastcgi;
    uwsgi_temp_path %(dir)s/uwsgi;
    scgi_temp_path %(dir)s/scgi;
    include %(dir)s/pgfeed.conf;
}
'''


def make_certificate(directory):
    """A self-signed certificate for localhost: (certificate path, key path)."""
    cert, key = os.path.join(directory, 'cert.pem'), os.path.join(directory, 'key.pem')
    subprocess.run(['openssl', 'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1',
                    '-nodes', '-days', '2', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost',
                    '-keyout', key, '-out', cert], check=True, capture_output=True)
    return cert, key


class Nginx:
    """nginx on a free loopback port, with TLS, in front of the gateway on `upstream_port`."""

    def __init__(self, name, upstream_port):
        self.dir = os.path.dirname(RUN.path(name, 'nginx.conf'))
        os.chmod(RUN.dir, 0o711)  # nginx's workers (nobody, when we are root) reach their files
        os.chmod(self.dir, 0o755)
        self.port = free_port()
        self.cert, key = make_certificate(self.dir)
        with open(EXAMPLE) as f:
            site = f.read()
        for example, ours in [('listen 443 ssl;', 'listen 127.0.0.1:%d ssl;' % self.port),
                              ('server 127.0.0.1:8080;', 'server 127.0.0.1:%d;' % upstream_port),
                              ('/etc/ssl/certs/feed.example.com.pem', self.cert),
                              ('/etc/ssl/private/feed.example.com.key', key)]:
            if site.count(example) != 1:
                raise TestFailure('%s no longer has "%s" once: update this test' % (EXAMPLE, example))
            site = site.replace(example, ours)
        with open(os.path.join(self.dir, 'pgfeed.conf'), 'w') as f:
            f.write(site)
        with open(os.path.join(self.dir, 'nginx.conf'), 'w') as f:
            f.write(MAIN_CONF % {'dir': self.dir})
        self.tls = ssl.create_default_context(cafile=self.cert)
        self.proc = None
        RUN.register(self)

    def __str__(self):
        return 'nginx :%d' % self.port

    def log_tail(self, lines=15):
        try:
            with open(os.path.join(self.dir, 'error.log'), errors='replace') as f:
                return ''.join(f.readlines()[-lines:])
        except OSError:
            return ''

    def _answers(self):
        if process_gone(self.proc):
            raise TestFailure('%s exited with %s at start:\n%s' % (self, self.proc.returncode, self.log_tail()))
        try:
            open_socket(self.port, timeout=0.5).close()
            return True
        except OSError:
            return False

    def start(self):
        # -e: the error log before the configuration is read, which would else be the system's.
        self.proc = subprocess.Popen(['nginx', '-p', self.dir, '-c', os.path.join(self.dir, 'nginx.conf'),
                                      '-e', os.path.join(self.dir, 'error.log')],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        wait_until(self._answers, '%s to accept connections' % self, 10, 0.02)
        return self

    def stop(self):
        if self.proc is not None and not process_gone(self.proc):
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def stream(self, token, source_ip, **kwargs):
        return SseStream(self.port, token, source_ip=source_ip, tls=self.tls, **kwargs)


def curl_stream(port, token, cert, out_path):
    """curl -N through TLS, its body going to out_path and its complaints to out_path.err until it
    is stopped."""
    with open(out_path + '.err', 'w') as err:
        return subprocess.Popen(['curl', '-sS', '-N', '--cacert', cert, '--resolve',
                                 'localhost:%d:127.0.0.1' % port, '-H', 'Authorization: Bearer ' + token,
                                 '-o', out_path, 'https://localhost:%d/v1/stream' % port], stderr=err)


def scenario_streams_through_nginx(_seed):
    """Live events through nginx's TLS (curl -N), and a resume with Last-Event-ID through it."""
    setup = Setup('nginx_sse', ['--http.trusted_proxies=127.0.0.1'], workers=1)
    curl = None
    try:
        setup.gateway.wait_streams_ready()
        nginx = Nginx('nginx_sse', setup.port).start()
        token = mint_token('proxied', ['*'])
        out = os.path.join(nginx.dir, 'curl.out')
        curl = curl_stream(nginx.port, token, nginx.cert, out)

        def body(path=out):
            with open(path, 'rb') if os.path.exists(path) else open(os.devnull, 'rb') as f:
                return f.read().decode('utf-8', 'replace')
        wait_until(lambda: 'event: connected' in body() or curl.poll() is not None, 'curl: event: connected', 15,
                   0.02)
        expect(curl.poll() is None, 'curl ended: %s %s' % (body(out + '.err'), body()))
        ids = setup.insert(2)
        wait_until(lambda: all('"activity_id" : %d' % i in body() for i in ids) or curl.poll() is not None,
                   'curl: the activities inserted after it connected, live', 15, 0.02)
        expect(curl.poll() is None, 'curl ended: %s' % body(out + '.err'))
        first, _ = setup.wait_entry(ids[0])
        second, _ = setup.wait_entry(ids[1])
        resumed = nginx.stream(token, '127.0.0.2', last_event_id=first, name='resumed')
        try:
            expect(resumed.wait_status() == 200, 'a resume through nginx: HTTP %s %s' % (resumed.status,
                                                                                          resumed.body[:200]))
            expect(resumed.header('Content-Type') == 'text/event-stream', 'Content-Type %s' %
                   resumed.header('Content-Type'))
            event = resumed.wait_event(lambda e: e.event == 'activity', 'the replayed activity')
            expect(event.id == second and json.loads(event.data)['activity_id'] == ids[1],
                   'replayed %s %s, expected %s' % (event.id, event.data, second))
        finally:
            resumed.close()
        return 'curl -N over TLS got 2 activities live; a resume after %s replayed %s' % (first, second)
    finally:
        if curl and curl.poll() is None:
            curl.terminate()
            curl.wait(10)
        setup.close()


def scenario_address_cap_per_client(_seed):
    """connections_per_address=2: each client of nginx holds 2 streams, whatever X-Forwarded-For it
    sends; a peer that is not a trusted proxy is counted under its own address."""
    setup = Setup('nginx_cap', ['--http.trusted_proxies=127.0.0.1, ::1', '--limits.connections_per_address=2',
                                '--limits.connections_per_user=100'], workers=1)
    held = []
    try:
        setup.gateway.wait_streams_ready()
        nginx = Nginx('nginx_cap', setup.port).start()
        token = mint_token('many', ['*'])

        def open_via_nginx(ip, forged=None):
            s = nginx.stream(token, ip, headers=[('X-Forwarded-For', forged)] if forged else (), name=ip)
            held.append(s)
            return s.wait_status()
        seen = []
        for ip in ('127.0.0.2', '127.0.0.3'):
            statuses = [open_via_nginx(ip), open_via_nginx(ip)]
            expect(statuses == [200, 200], 'two streams of %s through nginx: %s (nginx\'s address counted, not '
                   'the client\'s?)' % (ip, statuses))
            third = open_via_nginx(ip)
            expect(third == 429, 'a third stream of %s through nginx: HTTP %s' % (ip, third))
            forged = open_via_nginx(ip, forged='192.0.2.%s' % ip.rsplit('.', 1)[1])
            expect(forged == 429, 'a third stream of %s claiming another address in X-Forwarded-For: HTTP %s' % (
                ip, forged))
            seen.append('%s: 200 200 429 429' % ip)
        # Straight to the notifier from an untrusted peer, naming a new client each time.
        direct = []
        for i in range(3):
            s = SseStream(setup.port, token, source_ip='127.0.0.4', headers=[('X-Forwarded-For', '198.51.100.%d' % i)],
                          name='direct%d' % i)
            held.append(s)
            if i < 2:
                direct.append(s.wait_status())
            else:
                s.wait_closed()
                direct.append(s.status or s.how)
        expect(direct[:2] == [200, 200] and direct[2] in (429, 'closed', 'reset'),
               'three streams straight from 127.0.0.4, each with another X-Forwarded-For: %s' % direct)
        m = setup.gateway.metrics()
        refused = m.get('pgfeed_requests_rejected_total', status='429', reason='address_limit')
        expect(refused == 5, '%d refusals counted as address_limit, expected 5' % refused)
        return '; '.join(seen) + '; straight from 127.0.0.4: %s (its X-Forwarded-For ignored)' % direct
    finally:
        for s in held:
            s.close()
        setup.close()


def scenario_bad_trusted_proxies(_seed):
    """A bad http.trusted_proxies stops the start with a message naming the key and the entry."""
    for value, says in [('10.0.0.1/8', '"10.0.0.1/8" has address bits set past its /8'),
                        ('127.0.0.1, proxy.example', '"proxy.example" is not an IPv4 or IPv6 address'),
                        ('::1/129', 'has a prefix length that is not 0..128')]:
        done = subprocess.run([NOTIFIER_BIN, '--check-config', '--http.trusted_proxies=' + value],
                              capture_output=True, text=True, timeout=10)
        expect(done.returncode == 78 and 'http.trusted_proxies' in done.stderr and says in done.stderr,
               'trusted_proxies=%s: exit %d, %s' % (value, done.returncode, done.stderr.strip()))
    return '3 bad values refused at start, exit 78'


SCENARIOS = [(name[len('scenario_'):], fn) for name, fn in list(globals().items()) if name.startswith('scenario_')]


def main():
    seed, chosen = choose_scenarios(LABEL, SCENARIOS, sys.argv)
    start_watchdog(120 + 60 * len(chosen), LABEL, cleanup=RUN.finish)
    return run_scenarios(LABEL, SCENARIOS, chosen, seed, SETUPS, lambda setup: setup.gateways)


if __name__ == '__main__':
    sys.exit(main())
