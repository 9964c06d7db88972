// pgfeed browser client: follows pgfeed-notifier's /v1/stream (Server-Sent Events), resumes after a
// page reload from the last event id kept in storage, reconnects with capped exponential backoff and
// full jitter, and falls back to polling when the gateway says so (/readyz mode "poll") or keeps
// refusing. No dependencies; every browser global it uses can be injected (see the README).

/** A tiny signal: `value`, and `subscribe(cb)` which calls cb now and on every change. */
export function createSignal(initial) {
    let value = initial;
    const listeners = new Set();
    return {
        get value() { return value; },
        subscribe(cb) {
            listeners.add(cb);
            cb(value);
            return () => { listeners.delete(cb); };
        },
        /** @internal */
        set(next) {
            if (Object.is(next, value)) return;
            value = next;
            for (const cb of [...listeners]) cb(value);
        },
    };
}

/** The storage key under which the last event id of (baseUrl, feed) is kept. */
export function storageKey(baseUrl, feed) {
    return `pgfeed:lastEventId:${baseUrl}#${feed}`;
}

/** Full jitter: random() * min(maxMs, initialMs * 2^attempt), attempt counting from 0. */
export function backoffDelay(attempt, { initialMs, maxMs }, random) {
    return random() * Math.min(maxMs, initialMs * 2 ** attempt);
}

function feedError(code, message, cause) {
    const error = new Error(message, cause === undefined ? undefined : { cause });
    error.code = code;
    return error;
}

function defaultStorage() {
    try { return globalThis.localStorage; } catch { return undefined; } // a sandboxed frame throws
}

function bound(fn) {
    return typeof fn === 'function' ? fn.bind(globalThis) : fn;
}

/**
 * The feed API of the gateway (GET /v1/feed, POST /v1/read, ...) as promises of its JSON answers.
 * A refused call rejects with an Error whose `code` is 'api_failed', `status` the HTTP status (0:
 * no answer) and `message` the server's own ({"error": ...}).
 */
export function createFeedApi({ baseUrl = '', token, fetch = bound(globalThis.fetch) } = {}) {
    if (token === undefined || token === null || token === '')
        throw new TypeError('createFeedApi: a token is required');
    if (typeof fetch !== 'function') throw new TypeError('createFeedApi: no fetch');
    const base = String(baseUrl).replace(/\/+$/, '');
    const currentToken = () => (typeof token === 'function' ? token() : token);

    async function call(path, params, body) {
        const query = new URLSearchParams();
        for (const [name, value] of Object.entries(params || {}))
            if (value !== undefined && value !== null) query.set(name, String(value));
        const text = query.toString();
        const url = `${base}${path}${text ? `?${text}` : ''}`;
        const headers = { Authorization: `Bearer ${currentToken()}` };
        if (body !== undefined) headers['Content-Type'] = 'application/json';
        let response;
        try {
            response = await fetch(url, body === undefined ? { headers }
                : { method: 'POST', headers, body: JSON.stringify(body) });
        } catch (error) {
            throw Object.assign(feedError('api_failed', `${path}: no answer`, error), { status: 0 });
        }
        let answer = null;
        try { answer = await response.json(); } catch { /* not JSON: the status says enough */ }
        if (!response.ok) {
            const message = answer && typeof answer.error === 'string' ? answer.error : `answered ${response.status}`;
            throw Object.assign(feedError('api_failed', message), { status: response.status });
        }
        return answer;
    }

    return {
        /** {feed, items: [{position, activity_id, topic, created_at, is_read, payload, ...}], next_before} */
        page: ({ feed = 'all', limit, before, unreadOnly } = {}) =>
            call('/v1/feed', { feed, limit, before, unread_only: unreadOnly }),
        /** {feed, unread}, and `new` (items above `after`) when after is given */
        unreadCount: ({ feed = 'all', after } = {}) => call('/v1/unread_count', { feed, after }),
        markRead: (ids) => call('/v1/read', null, { ids }),
        markUnread: (ids) => call('/v1/unread', null, { ids }),
        markAllRead: ({ feed = 'all', upTo } = {}) =>
            call('/v1/read_all', null, upTo === undefined ? { feed } : { feed, up_to: upTo }),
        follows: () => call('/v1/follows'),
        follow: (topic) => call('/v1/follow', null, { topic }),
        unfollow: (topic) => call('/v1/unfollow', null, { topic }),
    };
}

export function createFeedClient({
    baseUrl = '',
    token,
    feed = 'all',
    storage = defaultStorage(),
    EventSource = globalThis.EventSource,
    fetch = bound(globalThis.fetch),
    setTimeout = bound(globalThis.setTimeout),
    clearTimeout = bound(globalThis.clearTimeout),
    random = Math.random,
    maxBuffer = 200,
    backoff = {},
    maxFailuresBeforePolling = 5,
    pollIntervalMs = 5000,
    onReset = () => {},
    onError = () => {},
} = {}) {
    if (token === undefined || token === null || token === '')
        throw new TypeError('createFeedClient: a token is required');
    if (typeof EventSource !== 'function') throw new TypeError('createFeedClient: no EventSource');
    if (typeof fetch !== 'function') throw new TypeError('createFeedClient: no fetch');

    const base = String(baseUrl).replace(/\/+$/, '');
    const delays = { initialMs: 500, maxMs: 30000, ...backoff };
    const key = storageKey(base, feed);
    const currentToken = () => (typeof token === 'function' ? token() : token);

    const state = createSignal('connecting');
    const unreadCount = createSignal(null);
    const newActivities = createSignal(0);
    const subscribers = new Set();
    const buffer = [];

    let lastEventId = readStored();
    let source = null;   // the open EventSource, if any
    let timer = null;    // the one pending timer: a reconnect or the next poll
    let attempt = 0;     // backoff exponent; reset by `connected`
    let failures = 0;    // consecutive failed connects; reset by `connected`
    let generation = 0;  // bumped on every change of course, so stale callbacks do nothing
    let closed = false;

    function report(error) {
        try { onError(error); } catch { /* the app's handler must not break the client */ }
    }

    function readStored() {
        try { return storage ? storage.getItem(key) || null : null; } catch { return null; }
    }

    function remember(event) {
        const id = event && event.lastEventId;
        if (typeof id !== 'string' || id === '' || id === lastEventId) return;
        lastEventId = id;
        try { if (storage) storage.setItem(key, id); } catch { /* full or disabled: memory only */ }
    }

    function clearTimer() {
        if (timer !== null) clearTimeout(timer);
        timer = null;
    }

    function closeSource() {
        if (source) {
            const old = source;
            source = null;
            try { old.close(); } catch { /* already closed */ }
        }
    }

    function streamUrl() {
        let url = `${base}/v1/stream?access_token=${encodeURIComponent(currentToken())}`;
        if (lastEventId) url += `&lastEventId=${encodeURIComponent(lastEventId)}`;
        return url;
    }

    function openStream() {
        const mine = ++generation;
        let es;
        try {
            es = new EventSource(streamUrl());
        } catch (error) {
            report(feedError('stream_failed', 'could not open the event stream', error));
            streamFailed(mine);
            return;
        }
        source = es;
        const on = (type, handler) => es.addEventListener(type, (event) => {
            if (!closed && source === es && generation === mine) handler(event);
        });
        on('connected', (event) => {
            remember(event);
            attempt = 0;
            failures = 0;
            state.set('live');
        });
        on('activity', (event) => deliver('activity', event));
        on('read', (event) => deliver('read', event));
        on('reset', (event) => {
            remember(event);
            newActivities.set(0);
            let data = null;
            try { data = JSON.parse(event.data); } catch { /* the reason is informative only */ }
            try { onReset(data); } catch (error) {
                report(feedError('callback_failed', 'onReset threw', error));
            }
        });
        on('error', () => streamFailed(mine));
    }

    // The stream failed to open or dropped: close it ourselves (no browser-paced retries), then
    // either poll or try again after a backoff, asking /readyz meanwhile whether to poll instead.
    function streamFailed(mine) {
        closeSource();
        failures += 1;
        if (failures >= maxFailuresBeforePolling) {
            startPolling();
            return;
        }
        state.set('reconnecting');
        const delay = backoffDelay(attempt, delays, random);
        attempt += 1;
        clearTimer();
        timer = setTimeout(() => {
            timer = null;
            if (!closed && generation === mine) openStream();
        }, delay);
        readyMode().then((mode) => {
            if (mode === 'poll' && !closed && generation === mine) startPolling();
        });
    }

    async function readyMode() {
        try {
            const response = await fetch(`${base}/readyz`);
            const body = await response.json();
            return body && (body.mode === 'poll' || body.mode === 'push') ? body.mode : null;
        } catch {
            return null; // unreachable or not JSON: no news
        }
    }

    async function pollUnread() {
        try {
            const response = await fetch(`${base}/v1/unread_count?feed=${encodeURIComponent(feed)}`, {
                headers: { Authorization: `Bearer ${currentToken()}` },
            });
            if (!response.ok) throw feedError('poll_failed', `unread_count answered ${response.status}`);
            const body = await response.json();
            if (!body || typeof body.unread !== 'number')
                throw feedError('poll_failed', 'unread_count answered without a number "unread"');
            return body.unread;
        } catch (error) {
            report(error.code ? error : feedError('poll_failed', 'unread_count failed', error));
            return null;
        }
    }

    function startPolling() {
        const mine = ++generation;
        clearTimer();
        closeSource();
        state.set('polling');
        pollTick(mine);
    }

    async function pollTick(mine) {
        const live = () => !closed && generation === mine;
        const unread = await pollUnread();
        if (!live()) return;
        if (unread !== null) unreadCount.set(unread);
        const mode = await readyMode();
        if (!live()) return;
        if (mode === 'push') {
            state.set('reconnecting');
            openStream();
            return;
        }
        timer = setTimeout(() => {
            timer = null;
            if (live()) pollTick(mine);
        }, pollIntervalMs);
    }

    function deliver(type, raw) {
        remember(raw);
        let data;
        try {
            data = JSON.parse(raw.data);
        } catch (error) {
            report(feedError('malformed_event', `malformed ${type} event ${raw.lastEventId}`, error));
            return;
        }
        if (data === null || typeof data !== 'object') {
            report(feedError('malformed_event', `malformed ${type} event ${raw.lastEventId}: not an object`));
            return;
        }
        const event = { type, id: raw.lastEventId, data };
        buffer.push(event);
        while (buffer.length > maxBuffer) buffer.shift();
        if (type === 'activity' && data.op === 'insert') newActivities.set(newActivities.value + 1);
        // A read event's `unread` is the user's count over feed 'all' (see the outbox); it would be
        // wrong for any other feed, which only polling (or the app) can count.
        if (type === 'read' && feed === 'all' && typeof data.unread === 'number') unreadCount.set(data.unread);
        for (const cb of [...subscribers]) {
            try { cb(event); } catch (error) {
                report(feedError('callback_failed', 'a subscriber threw', error));
            }
        }
    }

    const readonly = (signal) => ({
        get value() { return signal.value; },
        subscribe: signal.subscribe,
    });

    const client = {
        subscribe(cb) {
            subscribers.add(cb);
            return () => { subscribers.delete(cb); };
        },
        unreadCount: readonly(unreadCount),
        newActivities: readonly(newActivities),
        state: readonly(state),
        recent() { return buffer.slice(); },
        markSeen() { newActivities.set(0); },
        get lastEventId() { return lastEventId; },
        close() {
            if (closed) return;
            closed = true;
            generation += 1;
            clearTimer();
            closeSource();
            state.set('closed');
        },
    };

    openStream();
    return client;
}
