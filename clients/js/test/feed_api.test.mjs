import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createFeedApi } from '../pgfeed.js';

// A fetch that records each request and answers from `reply(url, init)`: {status, body} or a throw.
function fakeFetch(reply = () => ({ status: 200, body: {} })) {
    const calls = [];
    const fetch = async (url, init = {}) => {
        calls.push({ url, init });
        const { status, body } = reply(url, init);
        return {
            ok: status >= 200 && status < 300,
            status,
            json: async () => (typeof body === 'string' ? JSON.parse(body) : body),
        };
    };
    return { fetch, calls };
}

test('reads are GETs with the token and only the parameters given', async () => {
    const { fetch, calls } = fakeFetch(() => ({ status: 200, body: { items: [], next_before: null } }));
    const api = createFeedApi({ baseUrl: 'https://feed.example/', token: 't1', fetch });
    await api.page({ feed: 'following', limit: 50, before: 1234, unreadOnly: true });
    await api.page();
    await api.unreadCount({ feed: 'mp_id:7', after: 99 });
    await api.follows();
    assert.deepEqual(calls.map((c) => c.url), [
        'https://feed.example/v1/feed?feed=following&limit=50&before=1234&unread_only=true',
        'https://feed.example/v1/feed?feed=following',  // the default: every token may use it
        'https://feed.example/v1/unread_count?feed=mp_id%3A7&after=99',
        'https://feed.example/v1/follows',
    ]);
    for (const c of calls) {
        assert.equal(c.init.method, undefined);
        assert.equal(c.init.headers.Authorization, 'Bearer t1');
        assert.equal(c.init.body, undefined);
    }
});

test('writes are JSON POSTs with exactly the documented keys', async () => {
    const { fetch, calls } = fakeFetch(() => ({ status: 200, body: { changed: 1 } }));
    const api = createFeedApi({ token: 't', fetch });
    assert.deepEqual(await api.markRead([1, 2]), { changed: 1 });
    await api.markUnread([3]);
    await api.markAllRead();
    await api.markAllRead({ feed: 'all', upTo: 77 });
    await api.follow('mp_id:7');
    await api.unfollow('mp_id:7');
    assert.deepEqual(calls.map((c) => [c.url, c.init.method, c.init.headers['Content-Type'], JSON.parse(c.init.body)]), [
        ['/v1/read', 'POST', 'application/json', { ids: [1, 2] }],
        ['/v1/unread', 'POST', 'application/json', { ids: [3] }],
        ['/v1/read_all', 'POST', 'application/json', { feed: 'following' }],
        ['/v1/read_all', 'POST', 'application/json', { feed: 'all', up_to: 77 }],
        ['/v1/follow', 'POST', 'application/json', { topic: 'mp_id:7' }],
        ['/v1/unfollow', 'POST', 'application/json', { topic: 'mp_id:7' }],
    ]);
});

test('the token function is asked at each call', async () => {
    const { fetch, calls } = fakeFetch();
    let n = 0;
    const api = createFeedApi({ token: () => `t${++n}`, fetch });
    await api.follows();
    await api.follows();
    assert.deepEqual(calls.map((c) => c.init.headers.Authorization), ['Bearer t1', 'Bearer t2']);
});

test("a refusal rejects with the server's message and status", async () => {
    const { fetch } = fakeFetch(() => ({ status: 400, body: { error: 'pgfeed: unknown feed "x"' } }));
    const api = createFeedApi({ token: 't', fetch });
    await assert.rejects(api.page({ feed: 'x' }), (e) => e.code === 'api_failed' && e.status === 400 &&
        e.message === 'pgfeed: unknown feed "x"');
});

test('an answer that is not JSON, or none at all, still rejects with a status', async () => {
    const notJson = createFeedApi({ token: 't', fetch: fakeFetch(() => ({ status: 503, body: '<html>' })).fetch });
    await assert.rejects(notJson.follows(), (e) => e.status === 503 && e.message === 'answered 503');
    const down = createFeedApi({ token: 't', fetch: async () => { throw new TypeError('network'); } });
    await assert.rejects(down.follows(), (e) => e.code === 'api_failed' && e.status === 0 &&
        e.cause instanceof TypeError);
});

test('a token is required', () => {
    assert.throws(() => createFeedApi({ fetch: fakeFetch().fetch }), TypeError);
    assert.throws(() => createFeedApi({ token: '', fetch: fakeFetch().fetch }), TypeError);
});
