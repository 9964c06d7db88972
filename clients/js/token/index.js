// Mints the tokens pgfeed-notifier's gateway accepts (notifier/auth.cpp): a JWT signed with
// HS256 (node's crypto HMAC) carrying sub, exp, topics, and aud, iss and nbf when asked for. For
// an app's backend (Node): the secret must never reach a browser.

import { createHmac } from 'node:crypto';

// The gateway's bounds (notifier/auth.hpp): a longer subject or topic, or more topics, is refused.
const MAX_USER_BYTES = 256;
const MAX_TOPIC_BYTES = 256;
const MAX_TOPICS = 256;

const CONTROL = /[\u0000-\u001f\u007f]/;

function invalid(message) {
    return new TypeError(`mintToken: ${message}`);
}

function checkTopic(topic) {
    if (typeof topic !== 'string' || topic === '') throw invalid('each topic must be a non-empty string');
    if (Buffer.byteLength(topic) > MAX_TOPIC_BYTES) throw invalid(`topic "${topic.slice(0, 40)}…" is over ${MAX_TOPIC_BYTES} bytes`);
    if (CONTROL.test(topic) || /[?[\\]/.test(topic))
        throw invalid(`topic ${JSON.stringify(topic)} has a control character or one of ? [ \\ (only * is a wildcard)`);
}

const base64url = (text) => Buffer.from(text).toString('base64url');

/**
 * An HS256 JWT for user `sub`: {sub, exp, topics[, nbf][, aud][, iss]}. `topics` are what the
 * user may follow ("mp_id:*", "*" for everything, which feed 'all' needs); `expiresIn` is in
 * seconds (default an hour); `now` in seconds since the epoch.
 */
export function mintToken({
    secret,
    sub,
    topics = [],
    expiresIn = 3600,
    notBefore,
    audience,
    issuer,
    now = Math.floor(Date.now() / 1000),
} = {}) {
    if (!(typeof secret === 'string' || secret instanceof Uint8Array) || secret.length === 0)
        throw invalid('a secret (a string or bytes, one of the gateway\'s auth.hs256_secrets) is required');
    if (typeof sub !== 'string' || sub === '') throw invalid('sub (the user key) must be a non-empty string');
    if (Buffer.byteLength(sub) > MAX_USER_BYTES || CONTROL.test(sub))
        throw invalid(`sub must be at most ${MAX_USER_BYTES} bytes without control characters`);
    if (!Array.isArray(topics) || topics.length > MAX_TOPICS) throw invalid(`topics must be an array of at most ${MAX_TOPICS}`);
    topics.forEach(checkTopic);
    if (!Number.isSafeInteger(expiresIn) || expiresIn <= 0) throw invalid('expiresIn must be a positive whole number of seconds');
    if (!Number.isSafeInteger(now)) throw invalid('now must be whole seconds since the epoch');
    if (notBefore !== undefined && !Number.isSafeInteger(notBefore)) throw invalid('notBefore must be whole seconds since the epoch');
    const audiences = audience === undefined ? [] : [audience].flat();
    if (audiences.some((a) => typeof a !== 'string' || a === '')) throw invalid('audience must be a string or an array of strings');
    if (issuer !== undefined && (typeof issuer !== 'string' || issuer === '')) throw invalid('issuer must be a non-empty string');

    const claims = { sub, exp: now + expiresIn, topics };
    if (notBefore !== undefined) claims.nbf = notBefore;
    if (audience !== undefined) claims.aud = audience;
    if (issuer !== undefined) claims.iss = issuer;
    const signed = `${base64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }))}.${base64url(JSON.stringify(claims))}`;
    return `${signed}.${createHmac('sha256', secret).update(signed).digest('base64url')}`;
}
