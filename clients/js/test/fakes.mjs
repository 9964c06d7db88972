// Fakes of the browser globals the client takes as options: fetch (with streamed event-stream
// bodies), timers and storage. No network, no real time.

/** Lets every pending promise callback run (setImmediate runs after the microtasks). */
export const settle = async () => {
    for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
};

export function fakeTimers() {
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
        now: () => now,
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

/** One answered GET /v1/stream: an event stream the test writes to. */
export class FakeStream {
    constructor(url, init) {
        this.url = url;
        this.init = init;
        this.closed = false;
        const encoder = new TextEncoder();
        this.body = new ReadableStream({ start: (controller) => { this.controller = controller; } });
        this.write = (text) => { if (!this.closed) this.controller.enqueue(encoder.encode(text)); };
        init.signal?.addEventListener('abort', () => {
            if (this.closed) return;
            this.closed = true;
            this.controller.error(new DOMException('aborted', 'AbortError'));
        });
    }
    emit(type, data = '', id = '') {
        this.write(`${id ? `id: ${id}\n` : ''}event: ${type}\ndata: ${data}\n\n`);
    }
    heartbeat() { this.write(':\n\n'); }
    fail() {
        if (this.closed) return;
        this.closed = true;
        this.controller.close();
    }
}

/**
 * fetch answering from `routes[path]`: {status, body, headers} or a function of (url, init)
 * returning one. '/v1/stream' answers a FakeStream unless its route returns an answer.
 */
export function fakeFetch(routes) {
    const calls = [];
    const streams = [];
    const fetch = async (url, init = {}) => {
        calls.push({ url, init });
        const path = new URL(url, 'http://x').pathname;
        const route = routes[path];
        const answer = typeof route === 'function' ? route(url, init) : route;
        if (path === '/v1/stream' && !answer) {
            const stream = new FakeStream(url, init);
            streams.push(stream);
            return new Response(stream.body, { status: 200, headers: { 'Content-Type': 'text/event-stream' } });
        }
        if (!answer) throw new TypeError(`fake fetch: no route for ${url}`);
        const { status = 200, body, headers = {} } = answer;
        return new Response(typeof body === 'string' ? body : JSON.stringify(body),
            { status, headers: { 'Content-Type': 'application/json', ...headers } });
    };
    return { fetch, calls, streams };
}

export function fakeStorage() {
    const map = new Map();
    return {
        map,
        getItem: (k) => (map.has(k) ? map.get(k) : null),
        setItem: (k, v) => { map.set(k, String(v)); },
        removeItem: (k) => { map.delete(k); },
    };
}
