import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createFeedClient, backoffDelay, storageKey } from '../pgfeed.js';

// ---- fakes -------------------------------------------------------------------------------------

class FakeEventSource {
    static instances = [];
    constructor(url) {
        this.url = url;
        this.closed = false;
        this.listeners = new Map();
        FakeEventSource.instances.push(this);
    }
    addEventListener(type, fn) {
        if (!this.listeners.has(type)) this.listeners.set(type, []);
        this.listeners.get(type).push(fn);
    }
    close() { this.closed = true; }
    emit(type, data = '', lastEventId = '') {
        for (const fn of this.listeners.get(type) || []) fn({ type, data, lastEventId });
    }
    fail() { this.emit('error'); }
}

function fakeTimers() {
    let now = 0;
    let next = 1;
    const timers = new Map();
    return {
        setTimeout(fn, ms) {
            const id = next++;
            timers.set(id, { fn, at: now + ms, ms });
            return id;
        },
        clearTimeout(id) { timers.delete(id); },
        pending() { return [...timers.values()]; },
        get now() { return now; },
        // Runs, in time order, the timers due within `ms`, letting promises settle after each.
        async advance(ms) {
            const end = now + ms;
            for (let fired = 0; ; fired++) {
                if (fired > 1000) throw new Error('fake timers: more than 1000 timers fired in one advance');
                await settle();
                let dueId = null;
                for (const [id, t] of timers) if (t.at <= end && (dueId === null || t.at < timers.get(dueId).at)) dueId = id;
                if (dueId === null) break;
                const t = timers.get(dueId);
                timers.delete(dueId);
                now = t.at;
                t.fn();
            }
            now = end;
            await settle();
        },
    };
}

// Lets every pending promise callback run (no time passes: setImmediate runs after the microtasks).
const settle = () => new Promise((resolve) => setImmediate(resolve));

function fakeFetch(routes) {
    const calls = [];
    const fetch = async (url, init = {}) => {
        calls.push({ url, init });
        const path = new URL(url, 'http://x').pathname;
        const route = routes[path];
        if (!route) throw new TypeError(`fake fetch: no route for ${url}`);
        const { status = 200, body } = typeof route === 'function' ? route(url, init) : route;
        return {
            ok: status >= 200 && status < 300,
            status,
            json: async () => (typeof body === 'string' ? JSON.parse(body) : body),
        };
    };
    return { fetch, calls };
}

function fakeStorage() {
    const map = new Map();
    return {
        map,
        getItem: (k) => (map.has(k) ? map.get(k) : null),
        setItem: (k, v) => { map.set(k, String(v)); },
        removeItem: (k) => { map.delete(k); },
    };
}

const PUSH = { status: 200, body: { status: 'ready', mode: 'push' } };
const POLL = { status: 503, body: { status: 'degraded', mode: 'poll', redis: false, postgres: true } };

function setup(options = {}, routes = {}) {
    FakeEventSource.instances = [];
    const timers = fakeTimers();
    const net = fakeFetch({ '/readyz': PUSH, '/v1/unread_count': { body: { unread: 0 } }, ...routes });
    const storage = options.storage || fakeStorage();
    const errors = [];
    const resets = [];
    const client = createFeedClient({
        baseUrl: 'https://feed.example',
        token: 'tok en',
        storage,
        EventSource: FakeEventSource,
        fetch: net.fetch,
        setTimeout: timers.setTimeout,
        clearTimeout: timers.clearTimeout,
        random: () => 0.5,
        onError: (e) => errors.push(e),
        onReset: (data) => resets.push(data),
        ...options,
    });
    const es = () => FakeEventSource.instances.at(-1);
    return { client, timers, net, storage, errors, resets, es };
}

const json = (v) => JSON.stringify(v);

// ---- tests -------------------------------------------------------------------------------------

test('connects, goes live and delivers activity and read events', () => {
    const { client, es, errors } = setup();
    assert.equal(FakeEventSource.instances.length, 1);
    assert.equal(es().url, 'https://feed.example/v1/stream?access_token=tok%20en');
    assert.equal(client.state.value, 'connecting');

    const states = [];
    client.state.subscribe((s) => states.push(s));
    const seen = [];
    client.subscribe((e) => seen.push(e));

    es().emit('connected', json({ user: 'u', topics: ['*'], resumed: false }), '1-0');
    assert.equal(client.state.value, 'live');
    assert.deepEqual(states, ['connecting', 'live']);

    es().emit('activity', json({ op: 'insert', position: 1, topic: 't' }), '1-1');
    es().emit('activity', json({ op: 'delete', position: 1 }), '1-2');
    es().emit('activity', json({ op: 'insert', position: 2 }), '1-3');
    es().emit('read', json({ op: 'read', user: 'u', positions: [2], unread: 7 }), '1-4');

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

test('read events do not set the badge of a feed other than all', () => {
    const { client, es } = setup({ feed: 'mentions' });
    es().emit('connected', json({}), '1-0');
    es().emit('read', json({ op: 'read_all', feed: 'all', unread: 3 }), '1-1');
    assert.equal(client.unreadCount.value, null);
    assert.equal(client.recent().length, 1, 'the event itself is still delivered');
});

test('a malformed event is reported and skipped, never thrown', () => {
    const { client, es, errors } = setup();
    const seen = [];
    client.subscribe((e) => seen.push(e.id));
    es().emit('connected', json({}), '1-0');
    assert.doesNotThrow(() => es().emit('activity', '{"op": "insert", ', '1-1'));
    assert.doesNotThrow(() => es().emit('read', '42', '1-2'));
    es().emit('activity', json({ op: 'insert' }), '1-3');

    assert.deepEqual(seen, ['1-3']);
    assert.deepEqual(errors.map((e) => e.code), ['malformed_event', 'malformed_event']);
    assert.equal(client.newActivities.value, 1);
    assert.equal(client.recent().length, 1);
    assert.equal(client.lastEventId, '1-3');
});

test('a throwing subscriber is reported and does not stop the others', () => {
    const { client, es, errors } = setup();
    const seen = [];
    client.subscribe(() => { throw new Error('boom'); });
    client.subscribe((e) => seen.push(e.id));
    es().emit('activity', json({ op: 'insert' }), '1-1');
    assert.deepEqual(seen, ['1-1']);
    assert.deepEqual(errors.map((e) => e.code), ['callback_failed']);
});

test('reset calls onReset and clears the new-activities counter', () => {
    const { client, es, resets } = setup();
    es().emit('connected', json({}), '5-0');
    es().emit('activity', json({ op: 'insert' }), '5-1');
    assert.equal(client.newActivities.value, 1);
    es().emit('reset', json({ reason: 'trimmed' }), '9-0');
    assert.deepEqual(resets, [{ reason: 'trimmed' }]);
    assert.equal(client.newActivities.value, 0);
    assert.equal(client.lastEventId, '9-0');
});

test('the last event id is persisted and used after a reload', () => {
    const storage = fakeStorage();
    const first = setup({ storage });
    first.es().emit('connected', json({}), '100-0');
    first.es().emit('activity', json({ op: 'insert' }), '100-5');
    assert.equal(storage.getItem(storageKey('https://feed.example', 'all')), '100-5');
    first.client.close();

    const second = setup({ storage }); // a new page: new client, same storage
    assert.equal(second.es().url, 'https://feed.example/v1/stream?access_token=tok%20en&lastEventId=100-5');
    second.es().emit('connected', json({ resumed: true }), '100-5');
    second.es().emit('reset', json({ reason: 'stream_gone' }), '200-0');
    assert.equal(storage.getItem(storageKey('https://feed.example', 'all')), '200-0', 'reset ids are kept too');

    const other = setup({ storage, feed: 'mentions' }); // another feed has its own key
    assert.equal(other.es().url, 'https://feed.example/v1/stream?access_token=tok%20en');
});

test('the client reconnects itself with the last id, and a token function is asked each time', async () => {
    let n = 0;
    const { es, timers } = setup({ token: () => `t${++n}` });
    assert.equal(es().url, 'https://feed.example/v1/stream?access_token=t1');
    es().emit('connected', json({}), '7-0');
    es().emit('activity', json({ op: 'insert' }), '7-1');
    const dropped = es();
    dropped.fail();
    assert.equal(dropped.closed, true, 'the client closes the EventSource itself');
    await timers.advance(1000);
    assert.equal(FakeEventSource.instances.length, 2);
    assert.equal(es().url, 'https://feed.example/v1/stream?access_token=t2&lastEventId=7-1');
});

test('backoff: full jitter over a capped exponential, reset by connected', async () => {
    assert.equal(backoffDelay(0, { initialMs: 500, maxMs: 30000 }, () => 1), 500);
    assert.equal(backoffDelay(3, { initialMs: 500, maxMs: 30000 }, () => 0.25), 1000);
    assert.equal(backoffDelay(100, { initialMs: 500, maxMs: 30000 }, () => 1), 30000);

    const { client, es, timers } = setup({ maxFailuresBeforePolling: 100 });
    const delays = [];
    for (let i = 0; i < 9; i++) {
        es().fail();
        assert.equal(client.state.value, 'reconnecting');
        const pending = timers.pending();
        assert.equal(pending.length, 1);
        delays.push(pending[0].ms);
        const before = FakeEventSource.instances.length;
        await timers.advance(pending[0].ms - 1);
        assert.equal(FakeEventSource.instances.length, before, 'not before the delay');
        await timers.advance(1);
        assert.equal(FakeEventSource.instances.length, before + 1, 'right at the delay');
    }
    // random() = 0.5 of 500, 1000, 2000, ... capped at 30000
    assert.deepEqual(delays, [250, 500, 1000, 2000, 4000, 8000, 15000, 15000, 15000]);

    es().emit('connected', json({}), '1-0');
    assert.equal(client.state.value, 'live');
    es().fail();
    assert.equal(timers.pending()[0].ms, 250, 'connected resets the attempt count');
});

test('polls after maxFailuresBeforePolling failed connects, and streams again when /readyz says push', async () => {
    let ready = PUSH;
    let unread = 4;
    const { client, es, timers, net } = setup({ maxFailuresBeforePolling: 3, pollIntervalMs: 5000 }, {
        '/readyz': () => ready,
        '/v1/unread_count': () => ({ body: { unread } }),
    });
    es().fail();
    await timers.advance(250);
    es().fail();
    await timers.advance(500);
    assert.equal(client.state.value, 'reconnecting');
    assert.equal(FakeEventSource.instances.length, 3);
    ready = POLL; // degraded from here on
    es().fail();
    assert.equal(client.state.value, 'polling');
    assert.equal(es().closed, true);
    await timers.advance(0);

    const polls = () => net.calls.filter((c) => c.url.includes('/v1/unread_count'));
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
    assert.equal(FakeEventSource.instances.length, 3, 'no stream while polling');

    const states = [];
    client.state.subscribe((s) => states.push(s));
    ready = PUSH;
    await timers.advance(5000);
    assert.equal(FakeEventSource.instances.length, 4);
    assert.equal(client.state.value, 'reconnecting');
    es().emit('connected', json({}), '3-0');
    assert.deepEqual(states, ['polling', 'reconnecting', 'live']);
    const pollsThen = polls().length;
    await timers.advance(60000);
    assert.equal(polls().length, pollsThen, 'polling stopped');
});

test('polls as soon as /readyz answers mode poll after a failed connect', async () => {
    const { client, es, timers, net } = setup({}, { '/readyz': POLL, '/v1/unread_count': { body: { unread: 2 } } });
    es().emit('connected', json({}), '1-0');
    es().fail();
    assert.equal(client.state.value, 'reconnecting');
    await timers.advance(0);
    assert.equal(client.state.value, 'polling');
    assert.equal(client.unreadCount.value, 2);
    await timers.advance(1000); // the backoff timer was cancelled: no new stream
    assert.equal(FakeEventSource.instances.length, 1);
    assert.ok(net.calls.some((c) => c.url === 'https://feed.example/readyz'));
});

test('a failing poll is reported and polling goes on', async () => {
    const { client, es, timers, errors } = setup({ maxFailuresBeforePolling: 1 }, {
        '/readyz': POLL, '/v1/unread_count': { status: 404, body: { error: 'no such endpoint' } },
    });
    es().fail();
    await timers.advance(0);
    assert.equal(client.state.value, 'polling');
    assert.deepEqual(errors.map((e) => e.code), ['poll_failed']);
    await timers.advance(5000);
    assert.deepEqual(errors.map((e) => e.code), ['poll_failed', 'poll_failed']);
    assert.equal(client.unreadCount.value, null);
});

test('recent() keeps the last maxBuffer events', () => {
    const { client, es } = setup({ maxBuffer: 3 });
    for (let i = 1; i <= 5; i++) es().emit('activity', json({ op: 'insert', position: i }), `1-${i}`);
    assert.deepEqual(client.recent().map((e) => e.id), ['1-3', '1-4', '1-5']);
    client.recent().length = 0; // a copy
    assert.equal(client.recent().length, 3);
});

test('unsubscribe stops the callbacks', () => {
    const { client, es } = setup();
    const seen = [];
    const unsubscribe = client.subscribe((e) => seen.push(e.id));
    const badges = [];
    const unsubscribeBadge = client.unreadCount.subscribe((n) => badges.push(n));
    es().emit('read', json({ op: 'read', unread: 1 }), '1-1');
    unsubscribe();
    unsubscribeBadge();
    es().emit('read', json({ op: 'read', unread: 0 }), '1-2');
    assert.deepEqual(seen, ['1-1']);
    assert.deepEqual(badges, [null, 1]);
    assert.equal(client.unreadCount.value, 0);
});

test('close() stops the stream, the reconnect timer and polling', async () => {
    const reconnecting = setup();
    const seen = [];
    reconnecting.client.subscribe((e) => seen.push(e));
    const first = reconnecting.es();
    first.fail();
    assert.equal(reconnecting.timers.pending().length, 1);
    reconnecting.client.close();
    assert.equal(reconnecting.client.state.value, 'closed');
    assert.equal(reconnecting.timers.pending().length, 0);
    await reconnecting.timers.advance(60000);
    assert.equal(FakeEventSource.instances.length, 1);
    first.emit('activity', json({ op: 'insert' }), '1-1'); // a late event on the old source
    assert.equal(seen.length, 0);

    const live = setup();
    live.es().emit('connected', json({}), '1-0');
    live.client.close();
    assert.equal(live.es().closed, true);

    const polling = setup({ maxFailuresBeforePolling: 1 }, { '/readyz': POLL });
    polling.es().fail();
    await polling.timers.advance(0);
    assert.equal(polling.client.state.value, 'polling');
    assert.equal(polling.timers.pending().length, 1);
    polling.client.close();
    assert.equal(polling.timers.pending().length, 0);
    const calls = polling.net.calls.length;
    await polling.timers.advance(60000);
    assert.equal(polling.net.calls.length, calls);
    assert.equal(polling.client.state.value, 'closed');
});
