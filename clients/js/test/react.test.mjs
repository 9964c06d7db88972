// pgfeed/react's hooks rendered by @testing-library/react (in happy-dom) over the client with a
// fake fetch: one stream at most under strict mode, closed on unmount, a bounded event buffer,
// the counters, and a reconnect only when the token changes.
import './dom.mjs';
import { test, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { act, cleanup, renderHook } from '@testing-library/react';
import { usePgfeed, useUnreadCount } from '../react/index.js';
import { fakeFetch, fakeStorage, fakeTimers, settle } from './fakes.mjs';

afterEach(cleanup);

const json = (v) => JSON.stringify(v);

function setup(routes = {}) {
    const timers = fakeTimers();
    const net = fakeFetch({
        '/readyz': { body: { status: 'ready', mode: 'push' } },
        '/v1/unread_count': { body: { unread: 0 } },
        ...routes,
    });
    // The most streams open at once, seen at each new one.
    let mostOpen = 0;
    const fetch = async (url, init) => {
        const response = await net.fetch(url, init);
        mostOpen = Math.max(mostOpen, net.streams.filter((s) => !s.closed).length);
        return response;
    };
    // Each client reads its stored event id once, when it is made.
    const storage = fakeStorage();
    let made = 0;
    const getItem = storage.getItem;
    storage.getItem = (key) => { made += 1; return getItem(key); };
    const options = {
        token: 'tok-1', storage, fetch, random: () => 0.5,
        setTimeout: timers.setTimeout, clearTimeout: timers.clearTimeout, now: timers.now,
    };
    const open = () => net.streams.filter((s) => !s.closed);
    return { timers, net, options, open, mostOpen: () => mostOpen, made: () => made };
}

const flush = () => act(settle);

test('under strict mode one stream opens, and it goes live', async () => {
    const { net, options, open, mostOpen, made } = setup();
    const { result } = renderHook(() => usePgfeed(options), { reactStrictMode: true });
    await flush();
    assert.equal(made(), 2, 'strict mode ran the effect twice');
    assert.equal(net.streams.length, 1, 'the double effect opened one stream, not two');
    assert.equal(mostOpen(), 1);
    assert.equal(result.current.state, 'connecting');
    open()[0].emit('connected', json({ user: 'u', topics: ['*'] }), '1-0');
    await flush();
    assert.equal(result.current.state, 'live');
    assert.equal(open().length, 1);
});

test('unmount closes the stream and cancels the timers', async () => {
    const { net, options, open, timers } = setup();
    const { unmount } = renderHook(() => usePgfeed(options), { reactStrictMode: true });
    await flush();
    open()[0].emit('connected', '{}', '1-0');
    await flush();
    assert.equal(open().length, 1);
    unmount();
    await settle();
    assert.equal(open().length, 0);
    assert.ok(net.streams[0].closed);
    assert.deepEqual(timers.pending(), []);
});

test('events: a buffer of the last bufferSize, newest last; newCount until acknowledge()', async () => {
    const { options, open } = setup();
    const { result } = renderHook(() => usePgfeed({ ...options, bufferSize: 3 }));
    await flush();
    const stream = open()[0];
    stream.emit('connected', '{}', '1-0');
    for (let i = 1; i <= 5; i++) stream.emit('activity', json({ op: 'insert', position: i }), `1-${i}`);
    stream.emit('activity', json({ op: 'delete', position: 1 }), '1-6');
    await flush();
    assert.deepEqual(result.current.events.map((e) => e.id), ['1-4', '1-5', '1-6']);
    assert.equal(result.current.newCount, 5, 'inserts only');
    act(() => result.current.acknowledge());
    assert.equal(result.current.newCount, 0);
    stream.emit('activity', json({ op: 'insert', position: 7 }), '1-7');
    await flush();
    assert.equal(result.current.newCount, 1);
    assert.equal(result.current.events.length, 3);
});

test('the unread count follows read events (feed all) and the gateway (useUnreadCount, following)', async () => {
    const { options, open } = setup({ '/v1/unread_count': { body: { feed: 'all', unread: 8 } } });
    const all = renderHook(() => usePgfeed({ ...options, feed: 'all' }));
    await flush();
    open()[0].emit('connected', '{}', '1-0');
    await flush();
    assert.equal(all.result.current.unreadCount, 8, 'asked once live');
    open()[0].emit('read', json({ op: 'read', user: 'u', positions: [1], activity_ids: [1], unread: 7 }), '1-1');
    await flush();
    assert.equal(all.result.current.unreadCount, 7);
    all.unmount();

    let unread = 41;
    const counted = setup({ '/v1/unread_count': (url) => ({ body: { feed: new URL(url, 'http://x').searchParams.get('feed'), unread } }) });
    const badge = renderHook(() => useUnreadCount(counted.options));
    assert.equal(badge.result.current, null, 'null until known');
    await flush();
    counted.open()[0].emit('connected', '{}', '2-0');
    await flush();
    assert.equal(badge.result.current, 41);
    assert.ok(counted.net.calls.some((c) => c.url.endsWith('/v1/unread_count?feed=following')));
    unread = 40;
    counted.open()[0].emit('read', json({ op: 'read', user: 'u', positions: [9], activity_ids: [9], unread: 99 }), '2-1');
    await act(() => counted.timers.advance(1000));
    assert.equal(badge.result.current, 40, 'asked again after the read event');
});

test('a new render with equal options keeps the stream; a new token reconnects once', async () => {
    const { net, options, open, mostOpen } = setup();
    const errors = [];
    const { result, rerender } = renderHook((props) => usePgfeed(props), {
        reactStrictMode: true,
        initialProps: { ...options, onError: (e) => errors.push(e) },
    });
    await flush();
    rerender({ ...options, onError: (e) => errors.push(e) }); // new object, new closure
    await flush();
    assert.equal(net.streams.length, 1);

    rerender({ ...options, token: 'tok-2' });
    await flush();
    assert.equal(net.streams.length, 2, 'one more stream');
    assert.ok(net.streams[0].closed);
    assert.equal(open().length, 1);
    assert.equal(open()[0].init.headers.Authorization, 'Bearer tok-2');
    assert.equal(mostOpen(), 1);
    assert.equal(result.current.state, 'connecting');
    assert.deepEqual(errors, []);
});

test('a function token is asked at each connect, its identity changes nothing', async () => {
    const { net, options, open } = setup();
    let current = 'fn-1';
    const { rerender } = renderHook((props) => usePgfeed(props), { initialProps: { ...options, token: () => current } });
    await flush();
    assert.equal(open()[0].init.headers.Authorization, 'Bearer fn-1');
    current = 'fn-2';
    rerender({ ...options, token: () => current });
    await flush();
    assert.equal(net.streams.length, 1);
});

test('no token: no stream, state closed; errors are shown and passed on', async () => {
    const { net, options } = setup({ '/v1/stream': { status: 503, body: { error: 'redis is unavailable' }, headers: { 'Retry-After': '5' } } });
    const idle = renderHook(() => usePgfeed({ ...options, token: null }));
    await flush();
    assert.equal(idle.result.current.state, 'closed');
    assert.equal(net.calls.length, 0);

    const passed = [];
    const refused = renderHook(() => usePgfeed({ ...options, onError: (e) => passed.push(e.code) }));
    await flush();
    assert.equal(refused.result.current.error?.code, 'stream_refused');
    assert.equal(refused.result.current.error?.status, 503);
    assert.equal(refused.result.current.state, 'polling');
    assert.deepEqual(passed, ['stream_refused']);
});
