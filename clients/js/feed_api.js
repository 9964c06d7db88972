// The gateway's feed API (GET /v1/feed, POST /v1/read, ...) as promises of its JSON answers.

import { bound, feedError } from './feed_error.js';

/** The feed a call names when the app names none: every token may use it (`all` needs "*"). */
export const DEFAULT_FEED = 'following';

/** The token as the app gave it: a string, or a function returning a string or a promise of one. */
export function tokenSource(token, who) {
    if (token === undefined || token === null || token === '') throw new TypeError(`${who}: a token is required`);
    return async () => {
        const value = typeof token === 'function' ? await token() : token;
        if (typeof value !== 'string' || value === '') throw new TypeError(`${who}: the token function gave no token`);
        return value;
    };
}

/**
 * A refused call rejects with an Error whose `code` is 'api_failed', `status` the HTTP status (0:
 * no answer) and `message` the server's own ({"error": ...}).
 */
export function createFeedApi({ baseUrl = '', token, fetch = bound(globalThis.fetch) } = {}) {
    const currentToken = tokenSource(token, 'createFeedApi');
    if (typeof fetch !== 'function') throw new TypeError('createFeedApi: no fetch');
    const base = String(baseUrl).replace(/\/+$/, '');

    async function call(path, params, body) {
        const query = new URLSearchParams();
        for (const [name, value] of Object.entries(params || {}))
            if (value !== undefined && value !== null) query.set(name, String(value));
        const text = query.toString();
        const url = `${base}${path}${text ? `?${text}` : ''}`;
        let response;
        try {
            const headers = { Authorization: `Bearer ${await currentToken()}` };
            if (body !== undefined) headers['Content-Type'] = 'application/json';
            response = await fetch(url, body === undefined ? { headers }
                : { method: 'POST', headers, body: JSON.stringify(body) });
        } catch (error) {
            throw feedError('api_failed', `${path}: no answer`, { cause: error, status: 0 });
        }
        let answer = null;
        try { answer = await response.json(); } catch { /* not JSON: the status says enough */ }
        if (!response.ok) {
            const message = answer && typeof answer.error === 'string' ? answer.error : `answered ${response.status}`;
            throw feedError('api_failed', message, { status: response.status });
        }
        return answer;
    }

    return {
        page: ({ feed = DEFAULT_FEED, limit, before, unreadOnly } = {}) =>
            call('/v1/feed', { feed, limit, before, unread_only: unreadOnly }),
        unreadCount: ({ feed = DEFAULT_FEED, after } = {}) => call('/v1/unread_count', { feed, after }),
        markRead: (ids) => call('/v1/read', null, { ids }),
        markUnread: (ids) => call('/v1/unread', null, { ids }),
        markAllRead: ({ feed = DEFAULT_FEED, upTo } = {}) =>
            call('/v1/read_all', null, upTo === undefined ? { feed } : { feed, up_to: upTo }),
        follows: () => call('/v1/follows'),
        follow: (topic) => call('/v1/follow', null, { topic }),
        unfollow: (topic) => call('/v1/unfollow', null, { topic }),
    };
}
