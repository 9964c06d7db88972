// How long the client waits before trying again: capped exponential backoff with jitter, and the
// server's Retry-After (RFC 9110 §10.2.3: delay-seconds or an HTTP-date).

// A Retry-After further ahead than this is taken as this (a clock far off, or a typo on the server).
export const MAX_RETRY_AFTER_MS = 3_600_000;

/**
 * Equal jitter over a capped exponential: half of min(maxMs, initialMs * 2^attempt), plus up to
 * the other half at random (attempt counts from 0). The fixed half bounds how often a client can
 * retry however `random` falls; the random half spreads clients that failed together.
 */
export function backoffDelay(attempt, { initialMs, maxMs }, random) {
    const cap = Math.min(maxMs, initialMs * 2 ** attempt);
    return cap / 2 + (random() * cap) / 2;
}

/** Retry-After in milliseconds from `now`, or null when absent or malformed. */
export function retryAfterMs(value, now) {
    if (typeof value !== 'string') return null;
    const text = value.trim();
    if (/^\d+$/.test(text)) return Math.min(Number(text) * 1000, MAX_RETRY_AFTER_MS);
    // An HTTP-date names its day and month ("Wed, 21 Oct 2015 07:28:00 GMT"); a bare number with
    // a dot or sign is not one, though Date.parse would take it.
    if (!/[A-Za-z]{3}/.test(text)) return null;
    const at = Date.parse(text);
    if (Number.isNaN(at)) return null;
    return Math.min(Math.max(0, at - now), MAX_RETRY_AFTER_MS);
}
