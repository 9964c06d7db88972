// pgfeed browser client: follows pgfeed-notifier's /v1/stream (Server-Sent Events, read with fetch
// so that a refused connect shows its status), resumes after a page reload from the last event id
// kept in storage, backs off on failures (honouring Retry-After), stops and asks the app on
// 401/403, and polls the unread count while the gateway says so (/readyz mode "poll") or keeps
// refusing. No dependencies; every browser global it uses can be injected (see the README).

import { backoffDelay, retryAfterMs } from './backoff.js';
import { createEventStreamParser, readEventStream } from './event_stream.js';
import { DEFAULT_FEED, tokenSource } from './feed_api.js';
import { bound, feedError } from './feed_error.js';

export { backoffDelay, retryAfterMs } from './backoff.js';
export { createEventStreamParser } from './event_stream.js';
export { DEFAULT_FEED, createFeedApi } from './feed_api.js';

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

function defaultStorage() {
    try { return globalThis.localStorage; } catch { return undefined; } // a sandboxed frame throws
}

const isAuthRefusal = (status) => status === 401 || status === 403;

async function errorMessage(response) {
    try {
        const body = await response.json();
        if (body && typeof body.error === 'string') return body.error;
    } catch { /* not JSON */ }
    return `answered ${response.status}`;
}

export function createFeedClient({
    baseUrl = '',
    token,
    feed = DEFAULT_FEED,
    storage = defaultStorage(),
    fetch = bound(globalThis.fetch),
    setTimeout = bound(globalThis.setTimeout),
    clearTimeout = bound(globalThis.clearTimeout),
    now = Date.now,
    random = Math.random,
    maxBuffer = 200,
    backoff = {},
    maxFailuresBeforePolling = 5,
    pollIntervalMs = 5000,
    countRefreshMs = 1000,
    onReset = () => {},
    onError = () => {},
    onAuthError = () => undefined,
} = {}) {
    let currentToken = tokenSource(token, 'createFeedClient');
    if (typeof fetch !== 'function') throw new TypeError('createFeedClient: no fetch');

    const base = String(baseUrl).replace(/\/+$/, '');
    const delays = { initialMs: 500, maxMs: 30000, ...backoff };
    const key = storageKey(base, feed);

    const state = createSignal('connecting');
    const unreadCount = createSignal(null);
    const newActivities = createSignal(0);
    const subscribers = new Set();
    const buffer = [];

    let lastEventId = readStored();
    let source = null;        // the current stream: {controller, live, delivered}
    let streamTimer = null;   // the next stream attempt
    let pollTimer = null;     // the next poll, while polling
    let countTimer = null;    // the count refresh window (at most one refresh per countRefreshMs)
    let countDirty = false;   // something changed the count during the window
    let failures = 0;         // consecutive failed streams; reset once a stream delivered
    let polling = false;
    let pollRun = 0;          // bumped when polling stops, so a poll in flight does nothing
    let authRun = 0;          // bumped per auth refusal, so only the latest answer of onAuthError counts
    let closed = false;

    function report(error) {
        try { onError(error); } catch { /* the app's handler must not break the client */ }
    }

    function readStored() {
        try { return storage ? storage.getItem(key) || null : null; } catch { return null; }
    }

    function remember(event) {
        const id = event.lastEventId;
        if (typeof id !== 'string' || id === '' || id === lastEventId) return;
        lastEventId = id;
        try { if (storage) storage.setItem(key, id); } catch { /* full or disabled: memory only */ }
    }

    function closeSource() {
        if (source) {
            source.controller.abort();
            source = null;
        }
    }

    function clearTimers() {
        for (const t of [streamTimer, pollTimer, countTimer]) if (t !== null) clearTimeout(t);
        streamTimer = pollTimer = countTimer = null;
    }

    // ---- the stream ----------------------------------------------------------------------------

    function openStream() {
        const stream = { controller: new AbortController(), live: false, delivered: false };
        source = stream;
        const current = () => !closed && source === stream;
        (async () => {
            let response;
            try {
                const headers = { Authorization: `Bearer ${await currentToken()}`, Accept: 'text/event-stream' };
                if (!current()) return;
                const url = `${base}/v1/stream${lastEventId ? `?lastEventId=${encodeURIComponent(lastEventId)}` : ''}`;
                response = await fetch(url, { headers, cache: 'no-store', signal: stream.controller.signal });
            } catch (error) {
                if (current()) streamFailed({ status: 0, cause: error });
                return;
            }
            if (!current()) return;
            const type = response.headers.get('Content-Type') || '';
            if (response.status !== 200 || !type.startsWith('text/event-stream')) {
                const message = response.status === 200 ? `not an event stream (${type})` : await errorMessage(response);
                if (current())
                    streamFailed({ status: response.status, message, retryAfter: response.headers.get('Retry-After') });
                return;
            }
            const parser = createEventStreamParser({
                onEvent: (event) => { if (current()) dispatch(stream, event); },
                onComment: () => { if (current() && stream.live) delivered(stream); },
            });
            try {
                await readEventStream(response.body, parser);
            } catch { /* dropped: the same as ended */ }
            if (current()) streamFailed({ status: 200 });
        })();
    }

    // A stream counts as working once it stayed open past `connected` (a heartbeat came) or
    // delivered an event: only then do failures reset, so a gateway that accepts and drops at
    // once still meets a growing backoff.
    function delivered(stream) {
        if (stream.delivered) return;
        stream.delivered = true;
        failures = 0;
    }

    function dispatch(stream, event) {
        if (event.type === 'connected') {
            remember(event);
            stream.live = true;
            stopPolling();
            state.set('live');
            countChanged();
        } else if (event.type === 'activity' || event.type === 'read') {
            deliver(event.type, event);
            delivered(stream);
        } else if (event.type === 'reset') {
            remember(event);
            newActivities.set(0);
            let data = null;
            try { data = JSON.parse(event.data); } catch { /* the reason is informative only */ }
            try { onReset(data); } catch (error) {
                report(feedError('callback_failed', 'onReset threw', { cause: error }));
            }
        }
    }

    // The stream was refused, dropped or could not be reached. 401/403 stop and ask the app;
    // anything else waits the backoff (and Retry-After) before the next try, polling meanwhile
    // when /readyz says poll, the gateway answered 503, or too many tries failed in a row.
    function streamFailed({ status, message, retryAfter, cause }) {
        source = null;
        if (isAuthRefusal(status)) {
            authRefused(feedError('unauthorized', `the stream answered ${status}: ${message}`, { status }));
            return;
        }
        failures += 1;
        if (message !== undefined) report(feedError('stream_refused', `the stream answered ${status}: ${message}`, { status }));
        else if (status === 0) report(feedError('stream_failed', 'the stream could not be reached', { cause, status }));
        const wait = backoffDelay(failures - 1, delays, random) + (retryAfterMs(retryAfter, now()) ?? 0);
        scheduleStream(wait);
        if (failures >= maxFailuresBeforePolling || status === 503) {
            startPolling();
        } else if (!polling) {
            state.set('reconnecting');
            readyMode().then((mode) => { if (mode === 'poll' && !closed && streamTimer !== null) startPolling(); });
        }
    }

    function scheduleStream(wait) {
        if (streamTimer !== null) clearTimeout(streamTimer);
        streamTimer = setTimeout(async () => {
            streamTimer = null;
            const run = authRun; // a refusal while /readyz is asked stops this try
            // While polling, try the stream only when the gateway says push is back.
            if (polling && (await readyMode()) === 'poll') {
                if (!closed && run === authRun && polling && streamTimer === null && source === null)
                    scheduleStream(Math.max(pollIntervalMs, backoffDelay(Math.max(0, failures - 1), delays, random)));
                return;
            }
            if (!closed && run === authRun && source === null && streamTimer === null) openStream();
        }, wait);
    }

    async function authRefused(error) {
        const mine = ++authRun;
        closeSource();
        stopPolling();
        clearTimers();
        failures += 1;
        state.set('unauthorized');
        report(error);
        let fresh;
        try { fresh = await onAuthError(error); } catch (thrown) {
            report(feedError('callback_failed', 'onAuthError threw', { cause: thrown }));
        }
        if (closed || mine !== authRun) return;
        if (typeof fresh !== 'string' || fresh === '') return; // stay stopped: the app knows why
        currentToken = tokenSource(fresh, 'onAuthError');
        state.set('reconnecting');
        scheduleStream(backoffDelay(failures - 1, delays, random)); // a hook that returns a bad token still backs off
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

    // ---- the unread count ----------------------------------------------------------------------

    // GET /v1/unread_count: {unread} or {status, retryAfter}; reports what went wrong.
    async function fetchUnread() {
        try {
            const response = await fetch(`${base}/v1/unread_count?feed=${encodeURIComponent(feed)}`, {
                headers: { Authorization: `Bearer ${await currentToken()}` },
            });
            if (!response.ok) {
                const status = response.status;
                const message = await errorMessage(response);
                if (status === 401) return { status, message };
                report(feedError('poll_failed', `unread_count answered ${status}: ${message}`, { status }));
                return { status, retryAfter: response.headers.get('Retry-After') };
            }
            const body = await response.json();
            if (body && typeof body.unread === 'number') return { unread: body.unread };
            report(feedError('poll_failed', 'unread_count answered without a number "unread"'));
        } catch (error) {
            report(feedError('poll_failed', 'unread_count failed', { cause: error, status: 0 }));
        }
        return {};
    }

    // The answer of one count request: the badge, or the auth refusal.
    function countAnswered(answer) {
        if (closed) return;
        if (answer.status === 401)
            authRefused(feedError('unauthorized', `unread_count answered 401: ${answer.message}`, { status: 401 }));
        else if (answer.unread !== undefined) unreadCount.set(answer.unread);
    }

    // Something may have changed the count: ask now, unless a request went out less than
    // countRefreshMs ago; then ask once when that window ends.
    function countChanged() {
        if (countTimer !== null) {
            countDirty = true;
            return;
        }
        fetchUnread().then(countAnswered);
        countTimer = setTimeout(() => {
            countTimer = null;
            if (countDirty && !closed) {
                countDirty = false;
                countChanged();
            }
        }, countRefreshMs);
    }

    function startPolling() {
        if (polling || closed) return;
        polling = true;
        state.set('polling');
        pollTick(pollRun);
    }

    function stopPolling() {
        polling = false;
        pollRun += 1;
        if (pollTimer !== null) clearTimeout(pollTimer);
        pollTimer = null;
    }

    async function pollTick(run) {
        const answer = await fetchUnread();
        if (closed || !polling || run !== pollRun) return;
        countAnswered(answer);
        if (!polling || run !== pollRun) return; // refused: authRefused stopped polling
        const asked = retryAfterMs(answer.retryAfter, now());
        const wait = asked === null ? pollIntervalMs : Math.max(pollIntervalMs, asked) + random() * delays.initialMs;
        pollTimer = setTimeout(() => {
            pollTimer = null;
            if (polling && run === pollRun) pollTick(run);
        }, wait);
    }

    // ---- events --------------------------------------------------------------------------------

    function deliver(type, raw) {
        remember(raw);
        let data;
        try {
            data = JSON.parse(raw.data);
        } catch (error) {
            report(feedError('malformed_event', `malformed ${type} event ${raw.lastEventId}`, { cause: error }));
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
        // A read event's `unread` is the user's count over feed 'all' (see the outbox); any other
        // feed asks the gateway again.
        if (type === 'read') {
            if (feed === 'all' && typeof data.unread === 'number') unreadCount.set(data.unread);
            else if (feed !== 'all') countChanged();
        }
        for (const cb of [...subscribers]) {
            try { cb(event); } catch (error) {
                report(feedError('callback_failed', 'a subscriber threw', { cause: error }));
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
            authRun += 1;
            stopPolling();
            clearTimers();
            closeSource();
            state.set('closed');
        },
    };

    openStream();
    return client;
}
