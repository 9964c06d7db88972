#!/usr/bin/env python3
"""SSE gateway benchmark: pgfeed-notifier's gateway against nchan, same client, same scenarios.

Run by bench/sse/run.sh, which builds the load client (build/bench/sse/loadclient) and starts the
throwaway PostgreSQL (fsync on) the notifier's side connects to through PGHOST. Per server:

  a. idle: 100,000 connections opened and held; server memory (summed Pss of its processes) before
     and after, per connection;
  b. broadcast: 10 events/s to 10,000 connections for BENCH_SECONDS; delivered, lost, latency from
     publish (nchan) or commit (notifier) to the client;
  c. maximum: 10,000 connections, publishing at rising rates; the highest delivered events/s
     with nothing lost, dropped or left behind.

nchan: Debian's nginx with libnginx-mod-nchan, a private nginx.conf (6 workers, 20,000 files each),
/sub an eventsource subscriber and /pub the publisher of one channel. The notifier: started as
bench/notifier/latency.py starts it, plus the HTTP gateway's settings (7 workers, limits opened up),
with a redis-server (AOF on) of its own; events are rows inserted into an attached table.
"""
import argparse
import base64
import datetime
import hashlib
import hmac
import json
import os
import platform
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True  # no __pycache__ beside the sources
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, '..', '..'))
sys.path.insert(0, HERE)
LOADCLIENT = os.path.join(ROOT, 'build', 'bench', 'sse', 'loadclient')
LOGS = os.path.join(ROOT, 'build', 'bench', 'sse', 'logs')
NOTIFIER_BIN = os.environ.get('PGFEED_NOTIFIER', os.path.join(ROOT, 'build', 'notifier', 'pgfeed-notifier'))

sys.path.insert(0, os.path.join(ROOT, 'test', 'notifier'))
# First: it re-executes this script under /usr/bin/python3 when psycopg2 or redis is missing here.
import _servers  # noqa: E402
import publish  # noqa: E402

CLK_TCK = os.sysconf('SC_CLK_TCK')

# Client settings, the same for both servers.
SOURCES = 8          # 127.0.0.2 .. 127.0.0.9
INFLIGHT = 128       # connects in flight per client process
IDLE_HOLD_S = 10     # how long the idle connections are held
SETTLE_S = 3         # after the connect phase, before memory is read
GRACE_S = 10         # the client's window: publishing time plus this
CLIENT_NICE = 0      # --client-nice

TARGET_IDLE_KIB = 4.0
TARGET_P99_MS = 50.0
TARGET_MAX_RATIO = 2.0


def log(msg):
    sys.stderr.write('[%s] %s\n' % (time.strftime('%H:%M:%S'), msg))
    sys.stderr.flush()


free_port = _servers.free_port
children_of = _servers.children


def wait_for(predicate, timeout, what):
    return _servers.wait_until(predicate, what, timeout, 0.05)


def port_open(port):
    try:
        with socket.create_connection(('127.0.0.1', port), timeout=0.5):
            return True
    except OSError:
        return False


# -- processes: memory and CPU from /proc --------------------------------------------------------------

def stat_fields(pid):
    """The fields of /proc/PID/stat after the command name (state first), or None when it is gone."""
    try:
        with open('/proc/%s/stat' % pid) as f:
            stat = f.read()
    except OSError:
        return None
    return stat[stat.rindex(')') + 2:].split()


def established(port):
    """Established TCP connections whose local port is `port` (the server's side), from /proc/net/tcp."""
    count = 0
    for table in ('/proc/net/tcp', '/proc/net/tcp6'):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    local, state = line.split()[1], line.split()[3]
                    count += state == '01' and int(local.rsplit(':', 1)[1], 16) == port
        except OSError:
            pass
    return count


def pss_kib(pids):
    total = 0
    for pid in pids:
        try:
            with open('/proc/%d/smaps_rollup' % pid) as f:
                for line in f:
                    if line.startswith('Pss:'):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


def cpu_seconds(pids):
    total = 0
    for pid in pids:
        fields = stat_fields(pid)
        if fields:
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / CLK_TCK


def process_table():
    """{pid: (ppid, cpu seconds)} of every process but kernel threads."""
    table = {}
    for entry in os.listdir('/proc'):
        fields = stat_fields(entry) if entry.isdigit() else None
        if not fields:
            continue
        ppid = int(fields[1])
        if ppid == 2 or int(entry) == 2:
            continue
        table[int(entry)] = (ppid, (int(fields[11]) + int(fields[12])) / CLK_TCK)
    return table


def machine_busy():
    """(busy, total) jiffies of all CPUs from /proc/stat."""
    with open('/proc/stat') as f:
        values = [int(v) for v in f.readline().split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


class Noise:
    """What else ran on the machine during a scenario: the CPU seconds used by processes outside
    this benchmark (neither descendants of this script nor the PostgreSQL cluster run.sh started),
    and how busy all CPUs were. Processes that came and went within the window are not seen."""

    def __init__(self):
        self.before = process_table()
        self.busy0 = machine_busy()
        self.t0 = time.monotonic()

    @staticmethod
    def _ours(table):
        roots = {os.getpid()}
        pgdata = os.path.join(os.environ.get('PGHOST', ''), 'data', 'postmaster.pid')
        try:
            with open(pgdata) as f:
                roots.add(int(f.readline()))
        except (OSError, ValueError):
            pass
        ours = set()
        for pid in table:
            chain, p = [], pid
            while p in table and p not in roots and p not in ours and len(chain) < 64:
                chain.append(p)
                p = table[p][0]
            if p in roots or p in ours:
                ours.update(chain)
                ours.add(p)
        return ours

    def finish(self):
        after = process_table()
        busy1 = machine_busy()
        ours = self._ours(after) | self._ours(self.before)
        foreign = 0.0
        for pid, (_ppid, cpu) in after.items():
            if pid in ours:
                continue
            foreign += cpu - self.before[pid][1] if pid in self.before else cpu
        seconds = time.monotonic() - self.t0
        busy, total = busy1[0] - self.busy0[0], busy1[1] - self.busy0[1]
        return {'foreign_cpu_s': foreign, 'seconds': seconds,
                'busy_cpus': (os.cpu_count() or 1) * busy / total if total else None}


# -- nchan ----------------------------------------------------------------------------------------------

NGINX_CONF = """\
load_module {module};
worker_processes 6;
worker_rlimit_nofile 20000;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 19000; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    server {{
        # reuseport: a listening socket per worker, as the notifier's workers have
        listen 127.0.0.1:{port} backlog=65535 reuseport;
        location /sub {{
            nchan_subscriber eventsource;
            nchan_channel_id broadcast;
            nchan_subscriber_first_message newest;
        }}
        location /pub {{
            nchan_publisher;
            nchan_channel_id broadcast;
        }}
    }}
}}
"""
NCHAN_MODULE = '/usr/lib/nginx/modules/ngx_nchan_module.so'


class Nchan:
    name = 'nchan'
    sub_path = '/sub'
    token = None

    def __init__(self, workdir):
        self.dir = os.path.join(workdir, 'nchan')
        os.makedirs(self.dir)
        self.port = free_port()
        self.conf = os.path.join(self.dir, 'nginx.conf')
        with open(self.conf, 'w') as f:
            f.write(NGINX_CONF.format(module=NCHAN_MODULE, dir=self.dir, port=self.port))
        self.proc = None

    def start(self):
        self.out = open(os.path.join(self.dir, 'nginx.out'), 'w')
        self.proc = subprocess.Popen(['nginx', '-c', self.conf, '-p', self.dir, '-e', os.path.join(self.dir, 'error.log')], stdout=self.out,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        wait_for(lambda: self.proc.poll() is not None or (port_open(self.port) and len(children_of(self.proc.pid)) >= 6),
                 20, 'nginx to listen')
        if self.proc.poll() is not None:
            raise RuntimeError('nginx exited: %s' % self.log_tail())
        return self

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def pids(self):
        return [self.proc.pid] + children_of(self.proc.pid)

    def publish(self, rate, first, count):
        return publish.publish_nchan(self.port, rate, first, count)

    def aux_pids(self):
        return []

    def stop(self):
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def log_tail(self, lines=20):
        try:
            with open(os.path.join(self.dir, 'error.log'), errors='replace') as f:
                return ''.join(f.readlines()[-lines:])
        except OSError:
            return ''

    def notable_log(self):
        return self.log_tail(10).strip()

    def facts(self):
        version = subprocess.run(['nginx', '-v'], capture_output=True, text=True).stderr.strip()
        nchan = subprocess.run(['dpkg-query', '-W', '-f=${Version}', 'libnginx-mod-nchan'], capture_output=True,
                               text=True).stdout.strip()
        return '%s, nchan %s: worker_processes 6, worker_rlimit_nofile 20000, worker_connections 19000, ' \
               'listen reuseport backlog=65535' % (version.replace('nginx version: ', ''), nchan)


# -- pgfeed-notifier --------------------------------------------------------------------------------------

def mint_token(secret, sub='bench', topics=('*',), expires_in=3600):
    def b64(data):
        return base64.urlsafe_b64encode(data).rstrip(b'=').decode('ascii')
    header = b64(json.dumps({'alg': 'HS256', 'typ': 'JWT'}).encode())
    payload = b64(json.dumps({'sub': sub, 'exp': int(time.time()) + expires_in, 'topics': list(topics)}).encode())
    signing_input = '%s.%s' % (header, payload)
    signature = hmac.new(secret.encode(), signing_input.encode(), hashlib.sha256).digest()
    return signing_input + '.' + b64(signature)


def notifier_has_gateway():
    try:
        out = subprocess.run([NOTIFIER_BIN, '--help'], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return False
    return 'http.workers' in out or re.search(r'^\[http\]', out, re.M) is not None


class NotifierGateway:
    name = 'pgfeed-notifier'
    sub_path = '/v1/stream'
    WORKERS = 7

    def __init__(self, workdir):
        self.s = _servers
        self.workdir = workdir
        self.port = free_port()
        self.secret = secrets.token_hex(32)
        self.token = mint_token(self.secret)
        self.db = None
        self.redis = None
        self.notifier = None

    def start(self):
        self.db = self.s.FeedDatabase('bench_sse', extra_sql=publish.PG_SCHEMA).__enter__()
        self.redis = self.s.RedisServer('bench-sse-redis').start()
        self.args = ['--http.port=%d' % self.port, '--http.workers=%d' % self.WORKERS,
                     '--limits.max_connections=110000', '--limits.connections_per_user=1000000',
                     '--limits.new_connections_per_second=1000000', '--limits.new_connections_burst=1000000',
                     '--auth.hs256_secrets=%s' % self.secret]
        self.notifier = self.s.Notifier('bench-sse-notifier', self.db.name, self.redis, extra_args=self.args).start()

        def up():
            if not self.notifier.alive():
                raise RuntimeError('the notifier exited at start:\n%s' % self.notifier.log_tail())
            return port_open(self.port) and len(children_of(self.notifier.proc.pid)) >= self.WORKERS
        wait_for(up, 30, 'the notifier to listen with %d workers' % self.WORKERS)
        # One event through the whole path so that the bridge and the stream readers are warm.
        publish.publish_pg(self.db.name, 100, 0, 1)
        wait_for(lambda: self.redis.client().xlen(_servers.STREAM) >= 1, 30, 'the warm-up event in the stream')
        return self

    def alive(self):
        return self.notifier is not None and self.notifier.alive()

    def pids(self):
        return [self.notifier.proc.pid] + children_of(self.notifier.proc.pid)

    def publish(self, rate, first, count):
        return publish.publish_pg(self.db.name, rate, first, count)

    def aux_pids(self):
        """The pipeline behind the gateway: redis-server and the PostgreSQL cluster's processes."""
        pids = [self.redis.proc.pid] if self.redis and self.redis.proc else []
        try:
            with open(os.path.join(os.environ['PGHOST'], 'data', 'postmaster.pid')) as f:
                postmaster = int(f.readline())
            pids += [postmaster] + children_of(postmaster)
        except (OSError, KeyError, ValueError):
            pass
        return pids

    def stop(self):
        if self.notifier:
            self.notifier.stop(timeout=30)
        if self.redis:
            self.redis.stop()
        if self.db:
            self.db.drop()

    def log_path(self):
        return self.notifier.log_path if self.notifier else None

    def notable_log(self):
        """Warnings, errors and worker restarts in the notifier's log (the last few)."""
        if not self.notifier:
            return ''
        try:
            with open(self.notifier.log_path, errors='replace') as f:
                lines = [line for line in f if re.search(r'level=(warn|error)|restart|exited|died|signal', line)]
        except OSError:
            return ''
        counts = {}
        for line in lines:
            msg = re.search(r'msg=("[^"]*"|\S+)', line)
            key = msg.group(1) if msg else line.strip()[:80]
            counts[key] = counts.get(key, 0) + 1
        summary = ['%d x %s' % (n, k) for k, n in sorted(counts.items(), key=lambda kv: -kv[1])]
        return '\n'.join(summary[:15])

    def facts(self):
        version = subprocess.run([NOTIFIER_BIN, '--version'], capture_output=True, text=True).stdout.strip()
        pg = self.s.query(self.db.name, 'SELECT version()')[0][0].split(' on ')[0]
        fsync = self.s.query(self.db.name, 'SHOW fsync')[0][0]
        return '%s: %s (one HS256 token, topics ["*"]); %s fsync=%s; redis %s AOF everysec' % (
            version, ' '.join(a for a in self.args if not a.startswith('--auth.')), pg, fsync, self.redis.version())


# -- one run of the load client -------------------------------------------------------------------------------

class Scenario:
    def __init__(self, workdir):
        self.workdir = workdir
        self.seq = 1000  # seq ranges never overlap between runs, so nothing replayed counts

    def run(self, server, label, connections, rate=None, seconds=0.0, connect_timeout=60.0):
        """Opens `connections`, then either holds them (rate None) or publishes rate*seconds events."""
        count = int(round(rate * seconds)) if rate else 0
        first = self.seq
        self.seq += count + 1000
        ready = os.path.join(self.workdir, 'ready-%s-%s' % (server.name, label))
        # Publishing: the window closes GRACE_S after the publisher is done (SIGUSR1), however slow
        # the server's replies made it; the cap only bounds a run that goes wrong.
        measure = IDLE_HOLD_S if not rate else 3 * seconds + 60
        cmd = ([] if not CLIENT_NICE else ['nice', '-n', str(CLIENT_NICE)]) + [LOADCLIENT, '--host', '127.0.0.1', '--port', str(server.port), '--path', server.sub_path,
               '--connections', str(connections), '--sources', str(SOURCES), '--inflight', str(INFLIGHT),
               '--connect-timeout', str(connect_timeout), '--measure', str(measure), '--grace', str(GRACE_S),
               '--seq-first', str(first), '--seq-last', str(first + count - 1), '--ready-file', ready]
        if server.token:
            cmd += ['--token', server.token]
        pids = server.pids()
        mem_before = pss_kib(pids)
        cpu_before = cpu_seconds(pids)
        client_log = open(os.path.join(self.workdir, 'client-%s-%s.log' % (server.name, label)), 'w')
        client_log.write('%s\n' % ' '.join(c if not c.startswith('ey') else '<token>' for c in cmd))
        client_log.flush()
        started = time.monotonic()
        noise = Noise()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=client_log, text=True)
        result = {'label': label, 'connections': connections, 'rate': rate, 'seconds': seconds, 'events': count,
                  'mem_before_kib': mem_before}
        try:
            wait_for(lambda: os.path.exists(ready) or proc.poll() is not None, connect_timeout + 20,
                     'the load client to connect')
            pids = server.pids()
            cpu_ready = cpu_seconds(pids)
            result['server_cpu_connect_s'] = cpu_ready - cpu_before
            if rate:
                time.sleep(0.5)  # the last connections' first bytes settle
                cpu0 = cpu_seconds(server.pids())
                aux0 = cpu_seconds(server.aux_pids())
                result['publisher'] = server.publish(rate, first, count)
                if proc.poll() is None:
                    proc.send_signal(signal.SIGUSR1)
                proc.wait(measure + 60)
                result['server_cpu_s'] = cpu_seconds(server.pids()) - cpu0
                result['aux_cpu_s'] = cpu_seconds(server.aux_pids()) - aux0
            else:
                time.sleep(SETTLE_S)
                result['mem_after_kib'] = pss_kib(server.pids())
                result['server_processes'] = len(server.pids())
                proc.wait(IDLE_HOLD_S + 60)
        finally:
            if proc.poll() is None:
                proc.kill()
            out = proc.communicate()[0]
            client_log.close()
        result['wall_s'] = time.monotonic() - started
        result['noise'] = noise.finish()
        try:
            result['client'] = json.loads(out.strip().splitlines()[-1])
        except (ValueError, IndexError):
            raise RuntimeError('the load client printed no result (exit %s); see %s' % (proc.returncode,
                                                                                         client_log.name))
        result['server_alive'] = server.alive()
        # The next run starts once the server has let go of this run's connections.
        wait_for(lambda: established(server.port) == 0, 60, "the server to close this run's connections")
        return result


KEPT_UP_SHARE = 0.9
KEPT_UP_P99_MS = 1000.0


def ok_rate(r):
    """A rate the server kept up with: every connection established and kept, nothing lost, the
    deliveries at 90% or more of the scheduled rate x connections (a server whose slow replies
    hold the publisher back does not pass by lowering the rate), and p99 under a second (a
    growing backlog is not keeping up)."""
    c = r['client']
    pub = r['publisher']
    offered = r['rate'] * r['connections']
    return (not pub['errors'] and c['established'] == r['connections'] and c['failed'] == 0 and c['lost'] == 0
            and c['undelivered'] == 0 and c['dropped'] == 0 and c['delivered_per_s'] is not None
            and c['delivered_per_s'] >= KEPT_UP_SHARE * offered and c['p99_ms'] is not None
            and c['p99_ms'] < KEPT_UP_P99_MS)


def measure_server(server, args, workdir):
    sc = Scenario(workdir)
    res = {'name': server.name}
    log('%s: starting' % server.name)
    server.start()
    try:
        res['facts'] = server.facts()
        log('%s: a. idle, %d connections' % (server.name, args.idle_connections))
        res['idle'] = sc.run(server, 'idle', args.idle_connections, connect_timeout=args.connect_timeout)
        log('%s: idle: %s' % (server.name, summary(res['idle'])))
        log('%s: b. broadcast %g events/s to %d connections for %g s' % (server.name, args.broadcast_rate,
                                                                            args.connections, args.seconds))
        res['broadcast'] = sc.run(server, 'broadcast', args.connections, args.broadcast_rate, args.seconds)
        log('%s: broadcast: %s' % (server.name, summary(res['broadcast'])))
        res['ladder'] = []
        for rate in args.rates:
            # A rate that fails is tried once more: one burst of other work on the machine should
            # not end the ladder.
            for attempt in (1, 2):
                log('%s: c. %g events/s to %d connections for %g s%s' % (
                    server.name, rate, args.connections, args.max_seconds, ', again' if attempt == 2 else ''))
                r = sc.run(server, 'max-%g-%d' % (rate, attempt), args.connections, rate, args.max_seconds)
                r['ok'] = ok_rate(r)
                r['attempt'] = attempt
                res['ladder'].append(r)
                log('%s: %g events/s: %s, %s' % (server.name, rate, summary(r),
                                                 'kept up' if r['ok'] else 'did NOT keep up'))
                if r['ok'] or not server.alive():
                    break
            if not r['ok'] or not server.alive():
                break
        res['alive'] = server.alive()
    finally:
        res['log'] = server.notable_log()
        server.stop()
    return res


def summary(r):
    c = r['client']
    return ('established %d, failed %d %s, dropped %d, delivered %d, lost %d, undelivered %d, dup %d, p50 %s p99 %s '
            'max %s ms, %s deliveries/s, client cpu %.1f s' % (c['established'], c['failed'], c['failures'] or '',
                                                              c['dropped'], c['delivered'], c['lost'], c['undelivered'],
                                                              c['duplicates'], c['p50_ms'],
                                                   c['p99_ms'], c['max_ms'], c['delivered_per_s'], c['client_cpu_s']))


# -- the report ---------------------------------------------------------------------------------------------------

def fnum(v, spec='%.1f'):
    return '-' if v is None else spec % v


def machine_facts():
    mem = ''
    with open('/proc/meminfo') as f:
        for line in f:
            if line.startswith('MemTotal'):
                mem = '%.1f GiB' % (int(line.split()[1]) / 1048576)
    cpu = next((line.split(':', 1)[1].strip() for line in subprocess.run(['lscpu'], capture_output=True, text=True)
                .stdout.splitlines() if line.startswith('Model name')), platform.processor())
    sysctl = {}
    for key in ('net.core.somaxconn', 'net.ipv4.tcp_max_syn_backlog', 'net.ipv4.ip_local_port_range'):
        try:
            with open('/proc/sys/' + key.replace('.', '/')) as f:
                sysctl[key] = ' '.join(f.read().split())
        except OSError:
            pass
    with open('/proc/loadavg') as f:
        load = ' '.join(f.read().split()[:3])
    return ['machine: nproc=%d; CPU=%s; memory=%s; kernel %s; load average at the end %s' % (
        os.cpu_count(), cpu, mem, platform.release(), load),
            'sysctl: ' + '; '.join('%s=%s' % kv for kv in sysctl.items())]


def noise_cell(x):
    n = x.get('noise') or {}
    if not n:
        return '-'
    return 'others %.1f CPU-s in %.0f s; busy %s of %d CPUs' % (n['foreign_cpu_s'], n['seconds'],
                                                              fnum(n['busy_cpus'], '%.2f'), os.cpu_count())


def split_cell(c):
    sp = c.get('split')
    if not sp:
        return '-'
    return 'p50 %s / %s ms, p99 %s / %s ms' % (fnum(sp['to_stream_p50_ms'], '%.1f'), fnum(sp['from_stream_p50_ms'], '%.1f'),
                                               fnum(sp['to_stream_p99_ms'], '%.1f'), fnum(sp['from_stream_p99_ms'], '%.1f'))


def idle_rows(r):
    if not r or 'idle' not in r:
        return ['-'] * 5
    i = r['idle']
    c = i['client']
    per = None
    if c['established'] and 'mem_after_kib' in i:
        per = (i['mem_after_kib'] - i['mem_before_kib']) / c['established']
    r['idle_per_conn_kib'] = per
    held = '%d / %d' % (c['established'], c['failed'])
    if c['failures']:
        held += ' ' + ' '.join('%s=%d' % kv for kv in c['failures'].items())
    if c['dropped']:
        held += ', %d dropped while held' % c['dropped']
    return [held,
            '%s KiB' % fnum(per, '%.2f'),
            '%.0f MiB (%.0f MiB before), %d processes' % (i.get('mem_after_kib', 0) / 1024, i['mem_before_kib'] / 1024,
                                                          i.get('server_processes', 0)),
            '%.1f s, server CPU %.1f s' % (c['connect_s'], i['server_cpu_connect_s']),
            noise_cell(i)]


def broadcast_rows(r):
    if not r or 'broadcast' not in r:
        return ['-'] * 6
    b = r['broadcast']
    c = b['client']
    expected = b['events'] * b['connections']
    return ['%d of %d (%d established)' % (c['delivered'], expected, c['established']),
            '%d / %d / %d / %d / %d' % (c['lost'], c['undelivered'], c['duplicates'], c['dropped'], c['out_of_order']),
            '%s / %s / %s / %s ms' % (fnum(c['p50_ms'], '%.2f'), fnum(c['p95_ms'], '%.2f'), fnum(c['p99_ms'], '%.2f'),
                                      fnum(c['max_ms'], '%.1f')),
            'server %.1f s (%.1f us/delivery)%s, client %.1f s; publisher %.1f events/s, each %s p50 %s p99 %s ms' % (
                b.get('server_cpu_s', 0), 1e6 * b.get('server_cpu_s', 0) / max(1, c['delivered']),
                ' + PostgreSQL/Redis %.1f s' % b['aux_cpu_s'] if b.get('aux_cpu_s') else '',
                c['client_cpu_s'], b['publisher']['rate'] or 0,
                'POST' if r['name'] == 'nchan' else 'INSERT+commit', fnum(b['publisher'].get('send_p50_ms'), '%.1f'),
                fnum(b['publisher'].get('send_p99_ms'), '%.1f')),
            noise_cell(b), split_cell(c)]


def best_of(r):
    ok = [x for x in r.get('ladder', []) if x['ok']] if r else []
    return max(ok, key=lambda x: x['client']['delivered_per_s']) if ok else None


def ladder_cell(x):
    c = x['client']
    n = x.get('noise') or {}
    return '%g/s: %s deliv/s, lost %d+%d, drop %d, p50 %s p99 %s ms%s; others %.0f CPU-s' % (
        x['rate'], fnum(c['delivered_per_s'], '%.0f'), c['lost'], c['undelivered'], c['dropped'], fnum(c['p50_ms'], '%.0f'),
        fnum(c['p99_ms'], '%.0f'), '' if x['ok'] else ' (NOT kept up)', n.get('foreign_cpu_s', 0)) + (
        ' [2nd try]' if x.get('attempt') == 2 else '')


def report(results, args, runtime, notes):
    servers = ['nchan', 'pgfeed-notifier']
    col = {name: results.get(name) for name in servers}
    lines = ['SSE gateway benchmark, %s' % datetime.datetime.now().strftime('%Y-%m-%d %H:%M'), '']
    lines += machine_facts()
    for name in servers:
        r = col[name]
        lines.append('%s: %s' % (name, r['facts'] if r and 'facts' in r else 'not measured'))
    lines.append('client: build/bench/sse/loadclient, the same for both: %d source addresses (127.0.0.2-%d), '
                 '%d connects in flight per process, processes = max(2, ceil(N/19936)) (20,000 files each); '
                 'publisher: %s' % (SOURCES, 1 + SOURCES, INFLIGHT,
                                    'nchan HTTP POST /pub; notifier: one INSERT per transaction into an attached '
                                    'table (PostgreSQL fsync on), topic bench:1'))
    lines.append('everything (servers, PostgreSQL, Redis, publisher, client) on this one machine')
    lines.append('')
    rows = []
    idle = {n: idle_rows(col[n]) for n in servers}
    per = {n: (col[n] or {}).get('idle_per_conn_kib') for n in servers}
    nt = col['pgfeed-notifier']
    idle_target = '-'
    if nt and 'idle' in nt:
        c = nt['idle']['client']
        met = c['established'] == args.idle_connections and c['dropped'] == 0 and per['pgfeed-notifier'] is not None \
            and per['pgfeed-notifier'] < TARGET_IDLE_KIB
        idle_target = '%s held, < %g KiB per connection (notifier): %s' % (
            '{:,}'.format(args.idle_connections), TARGET_IDLE_KIB, 'met' if met else 'NOT MET')
    rows.append(['a. idle: %s connections held' % '{:,}'.format(args.idle_connections), '', '', ''])
    labels = ['   established / failed', '   server memory per connection (Pss)', '   whole server memory (Pss)',
              '   connect time', '   other load on the machine']
    for k, label in enumerate(labels):
        rows.append([label, idle['nchan'][k], idle['pgfeed-notifier'][k], idle_target if k == 1 else ''])
    bc = {n: broadcast_rows(col[n]) for n in servers}
    b_target = '-'
    if nt and 'broadcast' in nt:
        c = nt['broadcast']['client']
        met = c['lost'] == 0 and c['undelivered'] == 0 and c['dropped'] == 0 and c['established'] == args.connections and \
            c['p99_ms'] is not None and c['p99_ms'] < TARGET_P99_MS
        b_target = 'p99 < %g ms, no loss (notifier): %s' % (TARGET_P99_MS, 'met' if met else 'NOT MET')
    rows.append(['b. broadcast %g events/s to %s connections, %g s' % (args.broadcast_rate,
                                                                        '{:,}'.format(args.connections), args.seconds),
                 '', '', ''])
    labels = ['   delivered', '   lost / undelivered / duplicates / dropped / out of order',
              '   latency p50 / p95 / p99 / max', '   CPU seconds in the window', '   other load on the machine',
              '   split at the stream: to stream / from stream']
    for k, label in enumerate(labels):
        rows.append([label, bc['nchan'][k], bc['pgfeed-notifier'][k], b_target if k == 2 else ''])
    best = {n: best_of(col[n]) for n in servers}
    cells = {}
    for n in servers:
        x = best[n]
        if x is None:
            cells[n] = 'none kept up' if col[n] and col[n].get('ladder') else '-'
        else:
            c = x['client']
            cells[n] = '%s deliveries/s at %g events/s, p50 %s p99 %s ms' % (
                '{:,.0f}'.format(c['delivered_per_s']), x['rate'], fnum(c['p50_ms'], '%.1f'), fnum(c['p99_ms'], '%.1f'))
    m_target = '-'
    if best['pgfeed-notifier'] and best['nchan']:
        ratio = best['pgfeed-notifier']['client']['delivered_per_s'] / best['nchan']['client']['delivered_per_s']
        m_target = '>= %gx nchan: %.2fx, %s' % (TARGET_MAX_RATIO, ratio, 'met' if ratio >= TARGET_MAX_RATIO else 'NOT MET')
    elif nt and nt.get('ladder'):
        if not best['pgfeed-notifier']:
            m_target = '>= %gx nchan: NOT MET (no rate kept up)' % TARGET_MAX_RATIO
        elif col['nchan'] and col['nchan'].get('ladder'):
            m_target = '>= %gx nchan: met (nchan kept up with no rate)' % TARGET_MAX_RATIO
        else:
            m_target = '>= %gx nchan: nchan not measured' % TARGET_MAX_RATIO
    rows.append(['c. max delivered events/s at %s connections' % '{:,}'.format(args.connections), cells['nchan'],
                 cells['pgfeed-notifier'], m_target])
    depth = max(len((col[n] or {}).get('ladder', [])) for n in servers)
    for k in range(depth):
        row = ['   step %d (%g s each)' % (k + 1, args.max_seconds)]
        for n in servers:
            ladder = (col[n] or {}).get('ladder', [])
            row.append(ladder_cell(ladder[k]) if k < len(ladder) else '')
        row.append('')
        rows.append(row)
    widths = [max(len(r[i]) for r in rows + [['scenario', 'nchan', 'pgfeed-notifier', 'target']]) for i in range(4)]
    header = ['scenario', 'nchan', 'pgfeed-notifier', 'target']
    lines.append(' | '.join(h.ljust(w) for h, w in zip(header, widths)).rstrip())
    lines.append('-+-'.join('-' * w for w in widths))
    for r in rows:
        lines.append(' | '.join(v.ljust(w) for v, w in zip(r, widths)).rstrip())
    lines.append('')
    lines.append('Latency: receive time in the client minus ts_us, set by the publisher just before the POST (nchan) '
                 'or the INSERT\'s autocommit (notifier: commit-to-client, through PostgreSQL, the bridge and Redis).')
    lines.append('Lost: events missing below the highest seq a connection received; undelivered: missing above it '
                 'when the window closed, %g s after the publisher was done (in a cell: lost+undelivered).' % GRACE_S)
    lines.append('Delivered events/s: deliveries / (last delivery - first event\'s ts_us). Rates rise until one is '
                 'not kept up: kept up = every connection stayed, no event lost or undelivered, deliveries >= %d%% of rate x '
                 'connections, p99 < %g ms.' % (KEPT_UP_SHARE * 100, KEPT_UP_P99_MS))
    lines.append('Split (notifier): its SSE ids are Redis stream ids, whose milliseconds say when the bridge added '
                 'the entry: publish-to-stream = id ms - ts_us (commit, NOTIFY, the bridge), stream-to-client = '
                 'receive - id ms (XREAD in each worker, fan-out, the client).')
    lines.append('Other load: CPU seconds used during the scenario by processes that are not part of this benchmark '
                 '(other work on the machine), and the average number of busy CPUs (everything, this bench included).')
    lines.append('Memory: summed Pss (/proc/PID/smaps_rollup) of the server\'s processes %g s after the connect '
                 'phase, minus before it, per established connection.' % SETTLE_S)
    for n in servers:
        r = col[n]
        if r and r.get('log'):
            lines.append('%s log (warnings/errors, counted):' % n)
            lines += ['  ' + line for line in r['log'].splitlines()]
    lines += notes
    lines.append('runtime %.0f s' % runtime)
    return '\n'.join(lines) + '\n'


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--servers', default='nchan,notifier', help='comma-separated: nchan, notifier')
    parser.add_argument('--seconds', type=float, default=float(os.environ.get('BENCH_SECONDS', 20)),
                        help='broadcast window (default 20, or BENCH_SECONDS); the rate ladder uses half')
    parser.add_argument('--idle-connections', type=int, default=100000)
    parser.add_argument('--connections', type=int, default=10000)
    parser.add_argument('--broadcast-rate', type=float, default=10)
    parser.add_argument('--rates', default='5,6,7,8.5,10,12,14,17,20,24,29,35,42,50,60,72,86,100,120,144,173,207,249,300,360,400')
    parser.add_argument('--connect-timeout', type=float, default=180)
    parser.add_argument('--out', help='also write the report here')
    parser.add_argument('--json', help='write the raw results here')
    parser.add_argument('--client-nice', type=int, default=0,
                        help='run the load client at this nice value (negative: ahead of the servers)')
    args = parser.parse_args()
    global CLIENT_NICE
    CLIENT_NICE = args.client_nice
    args.rates = [float(r) for r in args.rates.split(',') if r]
    args.max_seconds = max(5.0, args.seconds / 2)
    if not os.access(LOADCLIENT, os.X_OK):
        sys.stderr.write('%s is missing: make -C bench/sse\n' % LOADCLIENT)
        return 2
    started = time.monotonic()
    shutil.rmtree(LOGS, ignore_errors=True)
    os.makedirs(LOGS)
    workdir = tempfile.mkdtemp(prefix='pgfeed-bench-sse.')
    results, notes = {}, []
    wanted = [s.strip() for s in args.servers.split(',') if s.strip()]
    try:
        for name in wanted:
            if name == 'nchan':
                server = Nchan(workdir)
            elif name == 'notifier':
                if not notifier_has_gateway():
                    notes.append('pgfeed-notifier not measured: %s has no HTTP gateway (--help lists no '
                                 'http.workers)' % NOTIFIER_BIN)
                    log(notes[-1])
                    continue
                server = NotifierGateway(workdir)
            else:
                parser.error('unknown server %s' % name)
            try:
                results[server.name] = measure_server(server, args, workdir)
            except Exception as e:  # the other server is still worth measuring
                notes.append('%s: the run stopped: %s' % (server.name, e))
                log(notes[-1])
                if server.name == 'pgfeed-notifier' and getattr(server, 'notifier', None):
                    notes.append('notifier log tail:\n' + server.notifier.log_tail(40))
                try:
                    server.stop()
                except Exception:
                    pass
            if server.name == 'pgfeed-notifier' and getattr(server, 'notifier', None):
                shutil.copyfile(server.notifier.log_path, os.path.join(LOGS, 'notifier.log'))
            elif server.name == 'nchan' and os.path.exists(os.path.join(server.dir, 'error.log')):
                shutil.copyfile(os.path.join(server.dir, 'error.log'), os.path.join(LOGS, 'nchan-error.log'))
        for f in sorted(os.listdir(workdir)):
            if f.startswith('client-'):
                shutil.copyfile(os.path.join(workdir, f), os.path.join(LOGS, f))
        notes.append('logs (servers, each client run): build/bench/sse/logs/')
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    text = report(results, args, time.monotonic() - started, notes)
    sys.stdout.write(text)
    if args.out:
        with open(args.out, 'w') as f:
            f.write(text)
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(results, f, indent=1, default=str)
    return 0


if __name__ == '__main__':
    sys.exit(main())
