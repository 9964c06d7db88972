// The client against a real HTTP server (node:http on 127.0.0.1) that refuses its streams: 401,
// 403, 429 with Retry-After (seconds and an HTTP-date), 429 and 503 without, while /readyz says
// push and /v1/unread_count answers. Each client runs until the retrying ones made a few tries
// (a condition with a deadline); then the requests each made are held against what its backoff
// allows in the time that actually went by, so a slow machine only lowers the counts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { createFeedClient } from '../pgfeed.js';

const BACKOFF = { initialMs: 100, maxMs: 400 };
const POLL_MS = 300;
const MAX_FAILURES = 3;

// What each token's stream gets: [status, headers], or null for an event stream.
const REFUSALS = {
    expired: () => [401, { 'WWW-Authenticate': 'Bearer' }],
    forbidden: () => [403, {}],
    'limited-seconds': () => [429, { 'Retry-After': '1' }],
    'limited-date': () => [429, { 'Retry-After': new Date(Date.now() + 2000).toUTCString() }],
    limited: () => [429, {}],
    unavailable: () => [503, {}],
    fresh: () => null,
};

function startServer() {
    const counts = {};
    const count = (token, path) => {
        counts[token] ??= {};
        counts[token][path] = (counts[token][path] ?? 0) + 1;
    };
    const server = http.createServer((request, response) => {
        const url = new URL(request.url, 'http://127.0.0.1');
        const token = (request.headers.authorization ?? '').replace(/^Bearer /, '')
            || url.searchParams.get('access_token') || 'none'; // the gateway takes either
        count(token, url.pathname);
        const json = (status, body, headers = {}) => {
            response.writeHead(status, { 'Content-Type': 'application/json', ...headers });
            response.end(JSON.stringify(body));
        };
        if (url.pathname === '/readyz') return json(200, { status: 'ready', mode: 'push' });
        if (url.pathname === '/v1/unread_count') {
            return REFUSALS[token]?.()?.[0] === 401 ? json(401, { error: 'the token is not valid' })
                : json(200, { feed: 'following', unread: 3 });
        }
        if (url.pathname !== '/v1/stream') return json(404, { error: 'no such endpoint' });
        const refusal = token in REFUSALS ? REFUSALS[token]() : [401, {}];
        if (refusal) return json(refusal[0], { error: 'refused' }, refusal[1]);
        response.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache' });
        response.write('retry: 3000\n\nid: 1-0\nevent: connected\ndata: {"user":"u","topics":["*"],"resumed":false}\n\n');
    });
    return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ server, counts })));
}

async function waitUntil(check, what, ms = 20000) {
    const deadline = Date.now() + ms;
    while (!check()) {
        if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what()}`);
        await new Promise((resolve) => setTimeout(resolve, 20));
    }
}

// Most tries that delays of at least half the capped exponential (less 1 ms of timer rounding
// each) let happen within `elapsedMs`, each delay also at least `minDelayMs`.
function maxTries(elapsedMs, minDelayMs = 0) {
    let tries = 1;
    for (let spent = 0, attempt = 0; ; attempt++) {
        const cap = Math.min(BACKOFF.maxMs, BACKOFF.initialMs * 2 ** attempt);
        spent += Math.max(cap / 2, minDelayMs) - 1;
        if (spent > elapsedMs) return tries;
        tries += 1;
    }
}

test('refused streams: 401/403 stop and ask the app, 429/503 back off, polls are paced', async (t) => {
    const { server, counts } = await startServer();
    t.after(() => new Promise((resolve) => { server.closeAllConnections(); server.close(resolve); }));
    const baseUrl = `http://127.0.0.1:${server.address().port}`;

    const clients = {};
    const authErrors = {};
    const started = performance.now();
    for (const token of Object.keys(REFUSALS).filter((name) => name !== 'fresh')) {
        authErrors[token] = [];
        clients[token] = createFeedClient({
            baseUrl, token, storage: null, backoff: BACKOFF, pollIntervalMs: POLL_MS,
            maxFailuresBeforePolling: MAX_FAILURES,
            onAuthError: (error) => { authErrors[token].push(error.status); },
        });
    }
    // A hook that supplies a token the server takes: the stream resumes with it.
    const resumed = createFeedClient({
        baseUrl, token: 'expired', storage: null, backoff: BACKOFF,
        onAuthError: async () => 'fresh',
    });
    t.after(() => {
        resumed.close();
        for (const client of Object.values(clients)) client.close();
    });

    const streams = (token) => counts[token]?.['/v1/stream'] ?? 0;
    await waitUntil(() => ['limited-seconds', 'limited-date', 'limited', 'unavailable'].every((k) => streams(k) >= 3)
        && resumed.state.value === 'live',
    () => `three tries of each retrying client and the resumed stream: ${JSON.stringify(counts)}, ${resumed.state.value}`);
    for (const client of Object.values(clients)) client.close();
    const elapsed = performance.now() - started;
    const report = JSON.stringify(counts);

    for (const [token, status] of [['expired', 401], ['forbidden', 403]]) {
        assert.equal(streams(token) - (token === 'expired' ? 1 : 0), 1, `${token}: one try, then stop (${report})`);
        assert.deepEqual(authErrors[token], [status]);
        assert.equal(clients[token].state.value, 'closed');
    }
    assert.ok(streams('fresh') >= 1, 'the resumed client used the token onAuthError gave');

    const bounds = {
        'limited-seconds': maxTries(elapsed, 1000),
        'limited-date': maxTries(elapsed, 1000), // an HTTP-date 2 s ahead, cut to the second: over 1 s
        limited: maxTries(elapsed),
        unavailable: maxTries(elapsed),
    };
    for (const [token, bound] of Object.entries(bounds)) {
        const tries = streams(token);
        assert.ok(tries <= bound, `${token}: ${tries} streams in ${Math.round(elapsed)} ms, at most ${bound} (${report})`);
        // /readyz: once after a failure, and before a retry while polling
        const ready = counts[token]['/readyz'] ?? 0;
        assert.ok(ready <= 2 * tries, `${token}: ${ready} /readyz for ${tries} streams (${report})`);
        // polling (from the 3rd failure, or the first 503) once per POLL_MS
        const polls = counts[token]['/v1/unread_count'] ?? 0;
        assert.ok(polls <= 1 + elapsed / (POLL_MS - 1), `${token}: ${polls} polls in ${Math.round(elapsed)} ms (${report})`);
    }
});
