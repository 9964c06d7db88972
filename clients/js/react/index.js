// pgfeed/react: the browser client (../pgfeed.js) as React hooks. One client per mounted hook,
// created in an effect and closed by its cleanup, so React's strict mode (mount, unmount, mount
// again) closes the first client before the second opens: never two streams at once.

import { useCallback, useEffect, useRef, useState } from 'react';
import { createFeedClient } from '../pgfeed.js';

const IDLE = Object.freeze({ state: 'closed', unreadCount: null, newCount: 0, events: Object.freeze([]), error: null });

/**
 * Follows the gateway while mounted: `{state, unreadCount, newCount, events, error, acknowledge}`.
 * A new client is made when `baseUrl`, `feed`, `bufferSize`, the pacing numbers or a string
 * `token` change; a function `token`, the callbacks and the injected globals are read from the
 * latest render, so passing new closures each render reconnects nothing. No token: no stream.
 */
export function usePgfeed(options = {}) {
    const {
        token, baseUrl = '', feed, bufferSize = 50,
        maxFailuresBeforePolling, pollIntervalMs, countRefreshMs,
    } = options;
    const latest = useRef(options);
    latest.current = options;
    const client = useRef(null);
    const [view, setView] = useState(IDLE);

    // A function token is one identity for the effect: its latest version is asked at each connect.
    const tokenKey = typeof token === 'function' ? 'function' : token || null;

    useEffect(() => {
        if (tokenKey === null) {
            setView(IDLE);
            return undefined;
        }
        const now = () => latest.current;
        // The rest (fetch, storage, timers, backoff, ...) as the client takes them, at creation.
        const { onReset, onError, onAuthError, onEvent, bufferSize: _, ...injected } = now();
        const feedClient = createFeedClient({
            ...injected,
            token: typeof now().token === 'function' ? () => now().token() : now().token,
            baseUrl, feed, maxBuffer: bufferSize, maxFailuresBeforePolling, pollIntervalMs, countRefreshMs,
            onReset: (data) => now().onReset?.(data),
            onAuthError: (error) => now().onAuthError?.(error),
            onError: (error) => {
                setView((v) => ({ ...v, error }));
                now().onError?.(error);
            },
        });
        client.current = feedClient;
        setView({ ...IDLE, state: feedClient.state.value });
        const set = (key) => (value) => setView((v) => (Object.is(v[key], value) ? v : { ...v, [key]: value }));
        const unsubscribe = [
            // A stream that went live again answers for the last error.
            feedClient.state.subscribe((state) => setView((v) => (v.state === state ? v
                : { ...v, state, error: state === 'live' ? null : v.error }))),
            feedClient.unreadCount.subscribe(set('unreadCount')),
            feedClient.newActivities.subscribe(set('newCount')),
            feedClient.subscribe((event) => {
                setView((v) => ({ ...v, events: feedClient.recent() }));
                now().onEvent?.(event);
            }),
        ];
        return () => {
            for (const off of unsubscribe) off();
            feedClient.close();
            if (client.current === feedClient) client.current = null;
        };
    }, [tokenKey, baseUrl, feed, bufferSize, maxFailuresBeforePolling, pollIntervalMs, countRefreshMs]);

    // "N new activities" seen: back to 0.
    const acknowledge = useCallback(() => { client.current?.markSeen(); }, []);
    return { ...view, acknowledge };
}

/** The unread count of `options.feed` alone (null until known), from its own client. */
export function useUnreadCount(options) {
    return usePgfeed(options).unreadCount;
}
