import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createFeedClient, backoffDelay, retryAfterMs, storageKey } from '../pgfeed.js';
import { fakeFetch, fakeStorage, fakeTimers, settle } from './fakes.mjs';

const PUSH = { status: 200, body: { status: 'ready', mode: 'push' } };
const POLL = { status: 503, body: { status: 'degraded', mode: 'poll', redis: false, postgres: true } };

function setup(options = {}, routes = {}) {
    const timers = fakeTimers();
    const net = fakeFetch({ '/readyz': PUSH, '/v1/unread_count': { body: { unread: 0 } }, ...routes });
    const storage = options.storage || fakeStorage();
    const errors = [];
    const resets = [];
    const client = createFeedClient({
        baseUrl: 'https://feed.example',
        token: 'tok en',
        feed: 'all',
        storage,
        fetch: net.fetch,
        setTimeout: timers.setTimeout,
        clearTimeout: timers.clearTimeout,
        now: timers.now,
        random: () => 0.5,
        onError: (e) => errors.push(e),
        onReset: (data) => resets.push(data),
        ...options,
    });
    const es = () => net.streams.at(-1);
    const streamCalls = () => net.calls.filter((c) => c.url.includes('/v1/stream'));
    const polls = () => net.calls.filter((c) => c.url.includes('/v1/unread_count'));
    return { client, timers, net, storage, errors, resets, es, streamCalls, polls };
}

const json = (v) => JSON.stringify(v);

test('connects with the token in a header, goes live and delivers activity and read events', async () => {
    const { client, es, errors, polls } = setup();
    await settle();
    assert.equal(es().url, 'https://feed.example/v1/stream');
    assert.equal(es().init.headers.Authorization, 'Bearer tok en');
    assert.equal(client.state.value, 'connecting');

    const states = [];
    client.state.subscribe((s) => states.push(s));
    const seen = [];
    client.subscribe((e) => seen.push(e));

    es().emit('connected', json({ user: 'u', topics: ['*'], resumed: false }), '1-0');
    await settle();
    assert.equal(client.state.value, 'live');
    assert.deepEqual(states, ['connecting', 'live']);
    assert.equal(polls().length, 1, 'the count is asked once the stream is live');

    es().emit('activity', json({ op: 'insert', position: 1, topic: 't' }), '1-1');
    es().emit('activity', json({ op: 'delete', position: 1 }), '1-2');
    es().emit('activity', json({ op: 'insert', position: 2 }), '1-3');
    es().emit('read', json({ op: 'read', user: 'u', positions: [2], unread: 7 }), '1-4');
    await settle();

    assert.deepEqual(seen.map((e) => [e.type, e.id]), [
        ['activity', '1-1'], ['activity', '1-2'], ['activity', '1-3'], ['read', '1-4'],
    ]);
    assert.deepEqual(seen[0].data, { op: 'insert', position: 1, topic: 't' });
    assert.equal(client.newActivities.value, 2, 'only inserts count');
    assert.equal(client.unreadCount.value, 7);
    assert.equal(client.lastEventId, '1-4');

    const counts = [];
    client.newActivities.subscribe((n) => counts.push(n));
    client.markSeen();
    assert.deepEqual(counts, [2, 0]);
    assert.equal(errors.length, 0);
});

test('the default feed is following, which every token may use; its count is asked after read events', async () => {
    const { client, es, polls, timers } = setup({ feed: undefined, countRefreshMs: 1000 }, {
        '/v1/unread_count': () => ({ body: { feed: 'following', unread: 40 + polls().length } }),
    });
    await settle();
    es().emit('connected', json({}), '1-0');
    await settle();
    assert.equal(polls()[0].url, 'https://feed.example/v1/unread_count?feed=following');
    assert.equal(client.unreadCount.value, 41);
    // read events carry the count of feed 'all': they make the client ask, at most once a window
    es().emit('read', json({ op: 'read', unread: 3 }), '1-1');
    es().emit('read', json({ op: 'read', unread: 2 }), '1-2');
    await settle();
    assert.equal(polls().length, 1, 'inside the window of the last request');
    assert.equal(client.unreadCount.value, 41, 'never the unread of feed all');
    await timers.advance(1000);
    assert.equal(polls().length, 2, 'one request for both events, when the window ends');
    assert.equal(client.unreadCount.value, 42);
    assert.equal(client.recent().length, 2, 'the events themselves are delivered');
});

test('a malformed event is reported and skipped, never thrown', async () => {
    const { client, es, errors } = setup();
    const seen = [];
    client.subscribe((e) => seen.push(e.id));
    await settle();
    es().emit('activity', '{"op": "insert", ', '1-1');
    es().emit('read', '42', '1-2');
    es().emit('activity', json({ op: 'insert' }), '1-3');
    await settle();

    assert.deepEqual(seen, ['1-3']);
    assert.deepEqual(errors.map((e) => e.code), ['malformed_event', 'malformed_event']);
    assert.equal(client.newActivities.value, 1);
    assert.equal(client.recent().length, 1);
    assert.equal(client.lastEventId, '1-3');
});

test('a throwing subscriber is reported and does not stop the others', async () => {
    const { client, es, errors } = setup();
    const seen = [];
    client.subscribe(() => { throw new Error('boom'); });
    client.subscribe((e) => seen.push(e.id));
    await settle();
    es().emit('activity', json({ op: 'insert' }), '1-1');
    await settle();
    assert.deepEqual(seen, ['1-1']);
    assert.deepEqual(errors.map((e) => e.code), ['callback_failed']);
});

test('reset calls onReset and clears the new-activities counter', async () => {
    const { client, es, resets } = setup();
    await settle();
    es().emit('connected', json({}), '5-0');
    es().emit('activity', json({ op: 'insert' }), '5-1');
    await settle();
    assert.equal(client.newActivities.value, 1);
    es().emit('reset', json({ reason: 'trimmed' }), '9-0');
    await settle();
    assert.deepEqual(resets, [{ reason: 'trimmed' }]);
    assert.equal(client.newActivities.value, 0);
    assert.equal(client.lastEventId, '9-0');
});

test('the last event id is persisted and used after a reload', async () => {
    const storage = fakeStorage();
    const first = setup({ storage });
    await settle();
    first.es().emit('connected', json({}), '100-0');
    first.es().emit('activity', json({ op: 'insert' }), '100-5');
    await settle();
    assert.equal(storage.getItem(storageKey('https://feed.example', 'all')), '100-5');
    first.client.close();

    const second = setup({ storage }); // a new page: new client, same storage
    await settle();
    assert.equal(second.es().url, 'https://feed.example/v1/stream?lastEventId=100-5');
    second.es().emit('connected', json({ resumed: true }), '100-5');
    second.es().emit('reset', json({ reason: 'stream_gone' }), '200-0');
    await settle();
    assert.equal(storage.getItem(storageKey('https://feed.example', 'all')), '200-0', 'reset ids are kept too');

    const other = setup({ storage, feed: 'mp_id:7' }); // another feed has its own key
    await settle();
    assert.equal(other.es().url, 'https://feed.example/v1/stream');
});

test('the client reconnects with the last id, and a token function (sync or async) is asked each time', async () => {
    let n = 0;
    const { es, timers, net } = setup({ token: async () => `t${++n}` });
    await settle();
    assert.equal(es().init.headers.Authorization, 'Bearer t1');
    es().emit('connected', json({}), '7-0');
    es().emit('activity', json({ op: 'insert' }), '7-1');
    await settle();
    const dropped = es();
    dropped.fail();
    await timers.advance(1000);
    assert.equal(net.streams.length, 2);
    assert.equal(es().url, 'https://feed.example/v1/stream?lastEventId=7-1');
    assert.match(es().init.headers.Authorization, /^Bearer t\d+$/);
    assert.notEqual(es().init.headers.Authorization, 'Bearer t1');
});

test('backoff: equal jitter over a capped exponential', () => {
    const b = { initialMs: 500, maxMs: 30000 };
    assert.equal(backoffDelay(0, b, () => 0), 250);
    assert.equal(backoffDelay(0, b, () => 1), 500);
    assert.equal(backoffDelay(3, b, () => 0.5), 3000);
    assert.equal(backoffDelay(100, b, () => 0), 15000);
    assert.equal(backoffDelay(100, b, () => 1), 30000);
});

test('Retry-After: delay-seconds or an HTTP-date, else nothing', () => {
    const now = Date.parse('2026-01-01T00:00:00Z');
    assert.equal(retryAfterMs('7', now), 7000);
    assert.equal(retryAfterMs(' 0 ', now), 0);
    assert.equal(retryAfterMs('Thu, 01 Jan 2026 00:00:30 GMT', now), 30000);
    assert.equal(retryAfterMs('Wed, 31 Dec 2025 23:00:00 GMT', now), 0, 'a date gone by: at once');
    assert.equal(retryAfterMs('999999999', now), 3_600_000, 'capped');
    for (const bad of [null, undefined, '', '-1', '1.5', 'soon', 'Foo, 99 Bar'])
        assert.equal(retryAfterMs(bad, now), null, String(bad));
});

test('failures reset only once a stream delivered: a gateway that accepts and drops meets a growing backoff', async () => {
    const { client, es, timers, net } = setup({ maxFailuresBeforePolling: 100 });
    const delays = [];
    for (let i = 0; i < 9; i++) {
        await settle();
        es().emit('connected', json({}), `${i}-0`); // accepted...
        await settle();
        assert.equal(client.state.value, 'live');
        es().fail();                                  // ...and dropped at once
        await settle();
        assert.equal(client.state.value, 'reconnecting');
        const pending = timers.pending().filter((t) => t.ms !== 1000); // not the count window
        assert.equal(pending.length, 1);
        delays.push(pending[0].ms);
        const before = net.streams.length;
        await timers.advance(pending[0].ms - 1);
        assert.equal(net.streams.length, before, 'not before the delay');
        await timers.advance(1);
        assert.equal(net.streams.length, before + 1, 'right at the delay');
    }
    // random() = 0.5: three quarters of 500, 1000, 2000, ... capped at 30000
    assert.deepEqual(delays, [375, 750, 1500, 3000, 6000, 12000, 22500, 22500, 22500]);

    await settle();
    es().emit('connected', json({}), '1-0');
    es().heartbeat(); // it stayed open: a heartbeat came
    await settle();
    es().fail();
    await settle();
    assert.deepEqual(timers.pending().map((t) => t.ms).filter((ms) => ms !== 1000), [375], 'delivered: reset');
});

test('401 and 403 stop reconnecting and ask onAuthError; a token it gives resumes the stream', async () => {
    for (const status of [401, 403]) {
        let refuse = true;
        const asked = [];
        const { client, timers, streamCalls, errors } = setup({
            onAuthError: async (error) => { asked.push(error); return asked.length === 1 ? undefined : 'fresh'; },
        }, {
            '/v1/stream': (url, init) => (refuse || init.headers.Authorization !== 'Bearer fresh'
                ? { status, body: { error: 'the token is not valid' } } : undefined),
        });
        await settle();
        assert.equal(client.state.value, 'unauthorized');
        assert.equal(asked.length, 1);
        assert.equal(asked[0].status, status);
        assert.equal(asked[0].code, 'unauthorized');
        assert.deepEqual(errors.map((e) => e.code), ['unauthorized']);
        await timers.advance(3_600_000);
        assert.equal(streamCalls().length, 1, `${status}: no retry without a new token`);
        assert.equal(timers.pending().length, 0);
        client.close();

        // a hook that gives a fresh token: the stream resumes with it, after a backoff
        refuse = false;
        asked.length = 0;
        const again = setup({ onAuthError: async () => 'fresh' }, {
            '/v1/stream': (url, init) => (init.headers.Authorization !== 'Bearer fresh'
                ? { status, body: { error: 'no' } } : undefined),
        });
        await settle();
        assert.equal(again.client.state.value, 'reconnecting');
        await timers.advance(0);
        await again.timers.advance(500);
        assert.equal(again.streamCalls().length, 2);
        assert.equal(again.es().init.headers.Authorization, 'Bearer fresh');
        again.es().emit('connected', json({}), '1-0');
        await settle();
        assert.equal(again.client.state.value, 'live');
        again.client.close();
    }
});

test('a hook that keeps giving a refused token is still backed off', async () => {
    let asked = 0;
    const { timers, streamCalls } = setup({ onAuthError: () => { asked += 1; return 'stale'; } }, {
        '/v1/stream': { status: 401, body: { error: 'the token is not valid' } },
    });
    await timers.advance(10_000);
    // delays of at least 250, 500, 1000, 2000, 4000 ms (half the capped exponential): 6 tries in 10 s at most
    assert.ok(streamCalls().length <= 6, `${streamCalls().length} tries`);
    assert.equal(asked, streamCalls().length);
});

test('429 and 503 wait out Retry-After on top of the backoff', async () => {
    for (const [status, retryAfter, waitMs] of [[429, '30', 30000], [503, 'Thu, 01 Jan 1970 00:01:00 GMT', 60000]]) {
        const { timers, streamCalls, errors } = setup({ maxFailuresBeforePolling: 100 }, {
            '/v1/stream': { status, body: { error: 'busy' }, headers: { 'Retry-After': retryAfter } },
            '/readyz': PUSH,
        });
        await settle();
        assert.equal(streamCalls().length, 1);
        assert.equal(errors[0].code, 'stream_refused');
        assert.equal(errors[0].status, status);
        await timers.advance(waitMs + 375 - 1);
        assert.equal(streamCalls().length, 1, `${status}: not before Retry-After plus the backoff`);
        await timers.advance(1);
        assert.equal(streamCalls().length, 2);
    }
});

test('polls after maxFailuresBeforePolling failed connects, and streams again when /readyz says push', async () => {
    let ready = PUSH;
    let unread = 4;
    const { client, es, timers, net, polls } = setup({ maxFailuresBeforePolling: 3, pollIntervalMs: 5000 }, {
        '/readyz': () => ready,
        '/v1/unread_count': () => ({ body: { unread } }),
    });
    await settle();
    es().fail();
    await timers.advance(375);
    es().fail();
    await timers.advance(750);
    assert.equal(client.state.value, 'reconnecting');
    assert.equal(net.streams.length, 3);
    ready = POLL; // degraded from here on
    es().fail();
    await settle();
    assert.equal(client.state.value, 'polling');

    assert.equal(polls().length, 1, 'polls at once');
    assert.equal(polls()[0].url, 'https://feed.example/v1/unread_count?feed=all');
    assert.deepEqual(polls()[0].init.headers, { Authorization: 'Bearer tok en' });
    assert.equal(client.unreadCount.value, 4);

    unread = 5;
    await timers.advance(4999);
    assert.equal(polls().length, 1);
    await timers.advance(1);
    assert.equal(polls().length, 2, 'then every pollIntervalMs');
    assert.equal(client.unreadCount.value, 5);
    await timers.advance(60000);
    assert.equal(net.streams.length, 3, 'no stream while /readyz says poll');

    ready = PUSH;
    await timers.advance(30000);
    assert.equal(net.streams.length, 4, 'the stream again, within the capped backoff');
    assert.equal(client.state.value, 'polling', 'polling until the stream is live');
    es().emit('connected', json({}), '3-0');
    await settle();
    assert.equal(client.state.value, 'live');
    const pollsThen = polls().length;
    await timers.advance(60000);
    assert.equal(polls().length, pollsThen, 'polling stopped');
});

test('polls as soon as /readyz answers mode poll after a failed connect, or the stream answers 503', async () => {
    const { client, es, timers, net } = setup({}, { '/readyz': POLL, '/v1/unread_count': { body: { unread: 2 } } });
    await settle();
    es().emit('connected', json({}), '1-0');
    await settle();
    es().fail();
    await settle();
    assert.equal(client.state.value, 'polling');
    assert.equal(client.unreadCount.value, 2);
    await timers.advance(1000);
    assert.equal(net.streams.length, 1, 'no new stream while /readyz says poll');
    assert.ok(net.calls.some((c) => c.url === 'https://feed.example/readyz'));

    const refused = setup({}, { '/v1/stream': { status: 503, body: { error: 'events are unavailable; poll the feed' } } });
    await settle();
    assert.equal(refused.client.state.value, 'polling');
});

test('a failing poll is reported and polling goes on, paced by Retry-After', async () => {
    const { client, es, timers, errors, polls } = setup({ maxFailuresBeforePolling: 1 }, {
        '/readyz': POLL, '/v1/unread_count': { status: 429, body: { error: 'slow down' }, headers: { 'Retry-After': '20' } },
    });
    await settle();
    es().fail();
    await settle();
    assert.equal(client.state.value, 'polling');
    assert.deepEqual(errors.map((e) => [e.code, e.status]), [['poll_failed', 429]]);
    await timers.advance(20000 + 250 - 1); // Retry-After, plus random() * initialMs
    assert.equal(polls().length, 1);
    await timers.advance(1);
    assert.equal(polls().length, 2);
    assert.equal(client.unreadCount.value, null);
});

test('a 401 on a poll stops everything and asks onAuthError', async () => {
    const asked = [];
    const { client, es, timers, polls, streamCalls } = setup({ maxFailuresBeforePolling: 1, onAuthError: (e) => { asked.push(e.status); } }, {
        '/readyz': POLL, '/v1/unread_count': { status: 401, body: { error: 'the token is not valid' } },
    });
    await settle();
    es().fail();
    await settle();
    assert.equal(client.state.value, 'unauthorized');
    assert.deepEqual(asked, [401]);
    await timers.advance(3_600_000);
    assert.equal(polls().length, 1);
    assert.equal(streamCalls().length, 1);
});

test('recent() keeps the last maxBuffer events', async () => {
    const { client, es } = setup({ maxBuffer: 3 });
    await settle();
    for (let i = 1; i <= 5; i++) es().emit('activity', json({ op: 'insert', position: i }), `1-${i}`);
    await settle();
    assert.deepEqual(client.recent().map((e) => e.id), ['1-3', '1-4', '1-5']);
    client.recent().length = 0; // a copy
    assert.equal(client.recent().length, 3);
});

test('unsubscribe stops the callbacks', async () => {
    const { client, es } = setup();
    const seen = [];
    const unsubscribe = client.subscribe((e) => seen.push(e.id));
    const badges = [];
    const unsubscribeBadge = client.unreadCount.subscribe((n) => badges.push(n));
    await settle();
    es().emit('read', json({ op: 'read', unread: 1 }), '1-1');
    await settle();
    unsubscribe();
    unsubscribeBadge();
    es().emit('read', json({ op: 'read', unread: 0 }), '1-2');
    await settle();
    assert.deepEqual(seen, ['1-1']);
    assert.deepEqual(badges, [null, 1]);
    assert.equal(client.unreadCount.value, 0);
});

test('close() stops the stream, the reconnect timer and polling', async () => {
    const reconnecting = setup();
    const seen = [];
    reconnecting.client.subscribe((e) => seen.push(e));
    await settle();
    const first = reconnecting.es();
    first.fail();
    await settle();
    assert.equal(reconnecting.timers.pending().length, 1);
    reconnecting.client.close();
    assert.equal(reconnecting.client.state.value, 'closed');
    assert.equal(reconnecting.timers.pending().length, 0);
    await reconnecting.timers.advance(60000);
    assert.equal(reconnecting.net.streams.length, 1);

    const live = setup();
    await settle();
    live.es().emit('connected', json({}), '1-0');
    await settle();
    live.client.close();
    assert.equal(live.es().closed, true, 'the request is aborted');
    live.es().emit('activity', json({ op: 'insert' }), '1-1');
    await settle();
    assert.equal(live.client.recent().length, 0);

    const polling = setup({ maxFailuresBeforePolling: 1 }, { '/readyz': POLL });
    await settle();
    polling.es().fail();
    await settle();
    assert.equal(polling.client.state.value, 'polling');
    polling.client.close();
    assert.equal(polling.timers.pending().length, 0);
    const calls = polling.net.calls.length;
    await polling.timers.advance(60000);
    assert.equal(polling.net.calls.length, calls);
    assert.equal(polling.client.state.value, 'closed');
});
