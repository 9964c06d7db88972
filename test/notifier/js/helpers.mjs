// Shared pieces of the EventSource tests. test/notifier/sse_gateway.py starts PostgreSQL's feed
// database, redis-server and pgfeed-notifier, then runs these tests with the environment below;
// run directly (npm test) they skip.
import { EventSource } from 'eventsource';
import net from 'node:net';

export const env = {
  port: Number(process.env.PGFEED_SSE_PORT || 0),
  token: process.env.PGFEED_SSE_TOKEN || '',
  user: process.env.PGFEED_SSE_USER || '',
  db: process.env.PGFEED_SSE_DB || '',
  done: process.env.PGFEED_SSE_DONE || '',
  ready: process.env.PGFEED_SSE_READY || '',
  out: process.env.PGFEED_SSE_OUT || '',
  seed: Number(process.env.PGFEED_SSE_SEED || 1),
};

export const skip = env.port ? false : 'started by test/notifier/sse_gateway.py, which provides the servers';

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// Polls `predicate` until it returns a truthy value (returned) or `ms` pass.
export async function waitFor(predicate, what, ms = 15000, interval = 10) {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = predicate();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(interval);
  }
}

// Stream ids "<ms>-<seq>" in Redis order.
export function compareIds(a, b) {
  const [am, as] = a.split('-').map(BigInt);
  const [bm, bs] = b.split('-').map(BigInt);
  if (am !== bm) return am < bm ? -1 : 1;
  if (as !== bs) return as < bs ? -1 : 1;
  return 0;
}

// mulberry32: a seeded generator, so a failing run can be repeated.
export function random(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// An EventSource whose requests carry `headers` (Authorization, a first Last-Event-ID) through the
// library's fetch hook. A Last-Event-ID the library sets itself when it reconnects wins over ours.
// `onRequest(url, headers)` sees every request it makes.
export function openEventSource(url, headers = {}, onRequest = () => {}) {
  return new EventSource(url, {
    fetch: (input, init) => {
      const merged = { ...headers, ...init.headers };
      onRequest(String(input), merged);
      return fetch(input, { ...init, headers: merged });
    },
  });
}

// A TCP proxy in front of the gateway whose cut() drops every connection it carries, as a network
// failure or a server that goes away would: the EventSource then reconnects by itself.
export async function startProxy(targetPort) {
  const pairs = new Set();
  const server = net.createServer((client) => {
    const upstream = net.connect(targetPort, '127.0.0.1');
    const pair = { client, upstream };
    pairs.add(pair);
    const drop = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: server.address().port,
    cut() {
      const n = pairs.size;
      for (const { client, upstream } of [...pairs]) {
        client.destroy();
        upstream.destroy();
      }
      return n;
    },
    close() {
      this.cut();
      return new Promise((resolve) => server.close(resolve));
    },
  };
}
