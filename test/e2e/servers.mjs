// The servers behind the demo page, each started in one fresh temporary directory: a private
// PostgreSQL 15 (test/pg_cluster.sh) with demo/parliament.sql, the web root demo/web_root.sh
// assembles, redis-server on a loopback port (AOF on; stops and starts again on the same port and
// data), and pgfeed-notifier serving the API and the web root. Every process started here is
// stopped by finish(), and also when the test process exits early (a failed hook, a signal). The
// directory is removed after a passing run and kept, its path printed, after a failing one.
import { spawn, spawnSync, execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { mintToken as mintPgfeedToken } from '../../clients/js/token/index.js';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const NOTIFIER = process.env.PGFEED_NOTIFIER || path.join(ROOT, 'build', 'notifier', 'pgfeed-notifier');
const WORKERS = 2;
const run = promisify(execFile);

// Polls `check` (sync or async) until it returns a truthy value, which is returned; throws after
// `ms` with `what` in the message. An exception of `check` ends the wait at once.
export async function waitUntil(check, what, ms = 15000, interval = 50) {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, interval));
  }
}

function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

// Tokens as an app's backend mints them, with the package's own minter (clients/js/token).
export function mintToken(secret, sub, topics = ['*'], expiresIn = 3600, now = undefined) {
  return mintPgfeedToken({ secret, sub, topics, expiresIn, now });
}

function tail(file, lines = 30) {
  try {
    return fs.readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch (e) {
    return `(${e.message})`;
  }
}

// A daemon in a process group of its own (detached: setsid), so that stopping it takes its
// children too (the notifier's workers and bridge).
class Daemon {
  constructor(name, logPath) {
    this.name = name;
    this.logPath = logPath;
    this.proc = null;
    this.exited = null;
    this.spawnError = null;
    this.stopped = false;
  }

  spawn(cmd, args, options = {}) {
    const log = fs.openSync(this.logPath, 'a');
    fs.writeSync(log, `--- e2e harness: ${[cmd, ...args].join(' ')}\n`);
    const proc = spawn(cmd, args, { ...options, detached: true, stdio: ['ignore', log, log] });
    fs.closeSync(log);
    this.proc = proc;
    this.spawnError = null;
    this.stopped = false;
    this.exited = new Promise((resolve) => proc.on('exit', (code, signal) => resolve(code ?? signal)));
    proc.on('error', (e) => { this.spawnError = e; });
  }

  alive() {
    return this.proc !== null && !this.spawnError && this.proc.exitCode === null && this.proc.signalCode === null;
  }

  assertAlive() {
    if (!this.alive()) {
      const how = this.spawnError ? this.spawnError.message : `exit ${this.proc?.exitCode ?? this.proc?.signalCode}`;
      throw new Error(`${this.name} is not running (${how}); last lines of ${this.logPath}:\n${tail(this.logPath)}`);
    }
  }

  // SIGTERM to the group leader (it passes it on, or is alone), SIGKILL to the group when it does
  // not exit within `ms`; then SIGKILL to whatever of the group outlived the leader.
  async stop(ms = 10000) {
    if (this.alive()) {
      this.proc.kill('SIGTERM');
      let timer;
      const late = new Promise((resolve) => { timer = setTimeout(() => resolve('late'), ms); });
      if (await Promise.race([this.exited, late]) === 'late') {
        fs.appendFileSync(this.logPath, `--- e2e harness: no exit ${ms} ms after SIGTERM, SIGKILL\n`);
        this.killGroupNow();
        await this.exited;
      }
      clearTimeout(timer);
    }
    this.killGroupNow();
    this.stopped = true;
  }

  killGroupNow() {
    if (this.proc === null || this.stopped || this.spawnError) return;
    try {
      process.kill(-this.proc.pid, 'SIGKILL');
    } catch {
      // the group is gone: the usual case
    }
  }
}

export class RedisServer extends Daemon {
  constructor(dir, port) {
    super('redis-server', path.join(dir, 'redis.log'));
    this.dir = dir;
    this.port = port;
  }

  async start() {
    this.spawn('redis-server', ['--bind', '127.0.0.1', '--port', String(this.port), '--dir', this.dir,
      '--appendonly', 'yes', '--appendfsync', 'everysec', '--save', '', '--daemonize', 'no']);
    // PING answers while the AOF still loads; INFO's loading:0 says it is done.
    await waitUntil(async () => {
      this.assertAlive();
      try {
        const { stdout } = await run('redis-cli', ['-h', '127.0.0.1', '-p', String(this.port), 'info', 'persistence'],
          { timeout: 2000 });
        return /^loading:0\r?$/m.test(stdout);
      } catch {
        return false;
      }
    }, `redis-server on port ${this.port} to accept commands`, 20000);
  }
}

export class Notifier extends Daemon {
  constructor(dir, pgHost, redisPort, webRoot, secret) {
    super('pgfeed-notifier', path.join(dir, 'notifier.log'));
    this.args = [
      `--postgres.conninfo=host=${pgHost} dbname=postgres user=postgres application_name=e2e-notifier`,
      '--redis.host=127.0.0.1', `--redis.port=${redisPort}`,
      '--http.listen=127.0.0.1', '--http.port=0', `--http.workers=${WORKERS}`, `--http.static_dir=${webRoot}`,
      `--auth.hs256_secrets=${secret}`, '--log.level=info',
      // A prompt bridge, readiness probes and reconnects to Redis: the outage steps wait on them.
      '--bridge.tick_ms=50', '--ready.probe_interval_ms=200', '--reconnect.max_ms=500',
    ];
    this.port = null;
  }

  async start() {
    fs.writeFileSync(this.logPath, ''); // the port is read from this start's lines only
    // Only the flags configure it: a PGFEED_<SECTION>_<KEY> variable of ours would set the others.
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('PGFEED_')));
    this.spawn(NOTIFIER, this.args, { env });
    this.port = await waitUntil(() => {
      this.assertAlive();
      const log = fs.readFileSync(this.logPath, 'utf8');
      const listening = log.match(/\bmsg=listening\b.*\bport=(\d+)/);
      const serving = log.match(/\bmsg=serving\b/g) || [];
      return listening && serving.length >= WORKERS ? Number(listening[1]) : null;
    }, `${this.name} to log msg=listening port=N and msg=serving from ${WORKERS} workers`, 20000);
    await this.waitReady(20000);
  }

  get baseUrl() {
    return `http://127.0.0.1:${this.port}`;
  }

  // Until /readyz says redis: true a worker answers streams 503. The kernel spreads connections
  // over the workers, so a run of fresh connections all saying so covers every worker with
  // near certainty (2^-12 per worker that would be missed).
  async waitReady(ms) {
    let streak = 0;
    await waitUntil(async () => {
      this.assertAlive();
      const body = await this.readyz();
      streak = body?.redis === true ? streak + 1 : 0;
      return streak >= 12 * WORKERS;
    }, `every worker's /readyz to say redis: true`, ms, 10);
  }

  async readyz() {
    try {
      const response = await fetch(`${this.baseUrl}/readyz`,
        { headers: { Connection: 'close' }, signal: AbortSignal.timeout(2000) });
      return await response.json();
    } catch {
      return null;
    }
  }
}

export class Servers {
  constructor() {
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgfeed-e2e.'));
    fs.chmodSync(this.dir, 0o755); // PostgreSQL runs as postgres when we are root
    this.pgDir = path.join(this.dir, 'pg');
    this.webRoot = path.join(this.dir, 'web');
    this.secret = randomBytes(16).toString('hex');
    this.pgEnv = { ...process.env, PGHOST: this.pgDir, PGPORT: '5432', PGUSER: 'postgres', PGDATABASE: 'postgres' };
    this.pgStarted = false;
    this.redis = null;
    this.notifier = null;
    this.finished = false;
    this.onExit = () => this.killNow();
    process.on('exit', this.onExit);
  }

  static async start(log = () => {}) {
    const servers = new Servers();
    try {
      await servers.startAll(log);
    } catch (e) {
      await servers.finish(false);
      throw e;
    }
    return servers;
  }

  async startAll(log) {
    let t = Date.now();
    const took = (what) => {
      log(`${what} in ${Date.now() - t} ms`);
      t = Date.now();
    };
    await this.startPostgres();
    took('PostgreSQL started and demo/parliament.sql loaded');
    await this.assembleWebRoot();
    took(`web root assembled by demo/web_root.sh in ${this.webRoot}`);
    await this.startRedis();
    took(`redis-server started on port ${this.redis.port}`);
    await this.startNotifier();
    took(`pgfeed-notifier serving on port ${this.notifier.port}`);
  }

  async startPostgres() {
    this.pgStarted = true; // from here on, stopping it is attempted (pg_cluster_stop checks the pid file)
    await this.shell('. test/pg_cluster.sh && pg_cluster_start "$1" && trap - EXIT', [this.pgDir], 90000);
    await this.shell('psql -X -q -v ON_ERROR_STOP=1 -f demo/parliament.sql', [], 90000);
  }

  async assembleWebRoot() {
    await this.shell('demo/web_root.sh "$1"', [this.webRoot], 60000);
  }

  async startRedis() {
    const redisDir = path.join(this.dir, 'redis');
    fs.mkdirSync(redisDir);
    this.redis = new RedisServer(redisDir, await freePort());
    await this.redis.start();
  }

  async startNotifier() {
    if (!fs.existsSync(NOTIFIER)) throw new Error(`no notifier binary at ${NOTIFIER} (make notifier)`);
    this.notifier = new Notifier(this.dir, this.pgDir, this.redis.port, this.webRoot, this.secret);
    await this.notifier.start();
  }

  // bash -c SCRIPT in the repository with PostgreSQL's environment; the output goes into the error.
  async shell(script, args, timeout) {
    try {
      return (await run('bash', ['-c', script, 'bash', ...args], { cwd: ROOT, env: this.pgEnv, timeout })).stdout;
    } catch (e) {
      throw new Error(`${script} (${args.join(' ')}) failed (${e.code ?? e.signal}):\n${e.stdout || ''}${e.stderr || ''}`);
    }
  }

  // One statement through psql; its rows as text, one a line, columns separated by |.
  async sql(statement) {
    try {
      const { stdout } = await run('psql', ['-X', '-q', '-At', '-v', 'ON_ERROR_STOP=1', '-c', statement],
        { env: this.pgEnv, timeout: 30000 });
      return stdout.trim();
    } catch (e) {
      throw new Error(`psql -c "${statement}": ${e.stderr || e.message}`);
    }
  }

  get baseUrl() {
    return this.notifier.baseUrl;
  }

  token(user) {
    return mintToken(this.secret, user);
  }

  // GET of the notifier's API as `user`: the decoded JSON body; throws with the status otherwise.
  async apiGet(user, pathAndQuery) {
    const response = await fetch(this.baseUrl + pathAndQuery, {
      headers: { Authorization: `Bearer ${this.token(user)}` }, signal: AbortSignal.timeout(10000),
    });
    const text = await response.text();
    if (!response.ok) throw new Error(`GET ${pathAndQuery}: HTTP ${response.status} ${text}`);
    return JSON.parse(text);
  }

  async stopAll() {
    await this.notifier?.stop();
    await this.redis?.stop();
    if (this.pgStarted) {
      await this.shell('. test/pg_cluster.sh && PG_CLUSTER_DIR=$1 pg_cluster_stop', [this.pgDir], 90000);
      this.pgStarted = false;
    }
  }

  // Stops everything; removes the directory when `passed`, else keeps it and says where.
  async finish(passed) {
    if (this.finished) return;
    this.finished = true;
    try {
      await this.stopAll();
    } finally {
      this.killNow();
      process.off('exit', this.onExit);
      if (passed) {
        fs.rmSync(this.dir, { recursive: true, force: true });
      } else {
        process.stderr.write(`e2e: logs and data kept in ${this.dir} (notifier.log, redis/redis.log, pg/server.log)\n`);
      }
    }
  }

  // The synchronous last resort at process exit: SIGKILL the daemons' groups, stop PostgreSQL.
  killNow() {
    this.notifier?.killGroupNow();
    this.redis?.killGroupNow();
    if (this.pgStarted) {
      spawnSync('bash', ['-c', '. test/pg_cluster.sh && PG_CLUSTER_DIR=$1 pg_cluster_stop', 'bash', this.pgDir],
        { cwd: ROOT, env: this.pgEnv, stdio: 'ignore', timeout: 60000 });
      this.pgStarted = false;
    }
    if (!this.finished) {
      process.stderr.write(`e2e: stopped early; logs and data kept in ${this.dir}\n`);
    }
  }
}

// A signal ends the process through 'exit', so that the servers are stopped then too.
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.once(signal, () => process.exit(128 + os.constants.signals[signal]));
}
