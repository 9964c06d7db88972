// The browser client (clients/js/pgfeed.js, run in node) against the real gateway (servers.mjs):
// a token minted by clients/js/token streams; an expired one is refused once and handed to the
// app's onAuthError, with no retry; a fourth stream of a user over limits.connections_per_user
// (3) backs off, its tries held against what the backoff allows in the time that went by.
// Counts come from the gateway's /metrics; every wait is a condition with a deadline.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createFeedClient } from '../../clients/js/pgfeed.js';
import { Servers, mintToken, waitUntil } from './servers.mjs';

const BACKOFF = { initialMs: 100, maxMs: 400 };
let servers;
let passed = false;
const clients = [];

before(async () => { servers = await Servers.start(); });
after(async () => {
  for (const client of clients) client.close();
  await servers?.finish(passed);
});

async function rejected(status, reason) {
  const text = await (await fetch(`${servers.baseUrl}/metrics`)).text();
  const pattern = new RegExp(`^pgfeed_requests_rejected_total\\{[^}]*status="${status}",reason="${reason}"\\} (\\d+)$`, 'gm');
  return [...text.matchAll(pattern)].reduce((sum, m) => sum + Number(m[1]), 0);
}

function client(token, options = {}) {
  const c = createFeedClient({ baseUrl: servers.baseUrl, token, storage: null, backoff: BACKOFF, ...options });
  clients.push(c);
  return c;
}

// As in clients/js/test/refusals.test.mjs: most tries delays of half the capped exponential
// (less 1 ms of timer rounding) allow in `elapsedMs`.
function maxTries(elapsedMs) {
  let tries = 1;
  for (let spent = 0, attempt = 0; ; attempt++) {
    spent += Math.min(BACKOFF.maxMs, BACKOFF.initialMs * 2 ** attempt) / 2 - 1;
    if (spent > elapsedMs) return tries;
    tries += 1;
  }
}

test('a minted token streams; an expired one stops at the first 401 and asks the app', async () => {
  const live = client(servers.token('carol'), { feed: 'all' });
  await waitUntil(() => live.state.value === 'live', 'a stream with a minted token to go live');
  await waitUntil(() => live.unreadCount.value !== null, 'its unread count');

  const before401 = await rejected(401, 'unauthorized');
  const asked = [];
  const expired = client(mintToken(servers.secret, 'carol', ['*'], 60, Math.floor(Date.now() / 1000) - 3600),
    { onAuthError: (error) => { asked.push(error.status); } });
  await waitUntil(() => expired.state.value === 'unauthorized', 'the expired token to be refused');
  // Long enough for a retry of the old client (it made thousands a second): a later live stream.
  const witness = client(servers.token('dave'));
  await waitUntil(() => witness.state.value === 'live', 'another stream to go live after it');
  assert.deepEqual(asked, [401]);
  assert.equal(await rejected(401, 'unauthorized') - before401, 1, 'one try with the expired token');
  assert.equal(expired.state.value, 'unauthorized');
});

test('a fourth stream of a user over the per-user limit backs off', async () => {
  const three = [1, 2, 3].map(() => client(servers.token('erin')));
  await waitUntil(() => three.every((c) => c.state.value === 'live'), 'three streams of one user to go live');
  const before429 = await rejected(429, 'user_limit');
  const started = performance.now();
  const fourth = client(servers.token('erin'), { maxFailuresBeforePolling: 100 });
  await waitUntil(async () => await rejected(429, 'user_limit') - before429 >= 4, 'the fourth stream to be refused 4 times');
  fourth.close();
  const elapsed = performance.now() - started;
  const tries = await rejected(429, 'user_limit') - before429;
  assert.ok(tries <= maxTries(elapsed), `${tries} refused tries in ${Math.round(elapsed)} ms, at most ${maxTries(elapsed)}`);
  assert.equal(fourth.state.value, 'closed');
  passed = true;
});
