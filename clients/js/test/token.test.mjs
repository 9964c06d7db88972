// pgfeed/token against the npm jsonwebtoken library: it verifies our tokens (signature, exp,
// nbf, aud, iss), and what it signs from the same claims is the same token, byte for byte.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import jwt from 'jsonwebtoken';
import { mintToken } from '../token/index.js';

const SECRET = 'a secret of the gateway';
const NOW = Math.floor(Date.now() / 1000);

test('jsonwebtoken verifies a minted token and reads its claims', () => {
    const token = mintToken({ secret: SECRET, sub: 'user-42', topics: ['mp_id:*', 'bill_id:12'], now: NOW });
    const claims = jwt.verify(token, SECRET, { algorithms: ['HS256'] });
    assert.deepEqual(claims, { sub: 'user-42', exp: NOW + 3600, topics: ['mp_id:*', 'bill_id:12'] });
    assert.deepEqual(jwt.decode(token, { complete: true }).header, { alg: 'HS256', typ: 'JWT' });
    assert.throws(() => jwt.verify(token, 'another secret', { algorithms: ['HS256'] }), /invalid signature/);
});

test('aud, iss and nbf as the gateway checks them', () => {
    const token = mintToken({ secret: SECRET, sub: 'u', topics: ['*'], audience: 'feeds', issuer: 'app', notBefore: NOW - 5, now: NOW });
    const claims = jwt.verify(token, SECRET, { algorithms: ['HS256'], audience: 'feeds', issuer: 'app' });
    assert.equal(claims.nbf, NOW - 5);
    assert.throws(() => jwt.verify(token, SECRET, { audience: 'other' }), /jwt audience invalid/);
    assert.throws(() => jwt.verify(token, SECRET, { issuer: 'other' }), /jwt issuer invalid/);
    const several = mintToken({ secret: SECRET, sub: 'u', audience: ['a', 'feeds'] });
    assert.equal(jwt.verify(several, SECRET, { audience: 'feeds' }).sub, 'u');
    const later = mintToken({ secret: SECRET, sub: 'u', notBefore: NOW + 600 });
    assert.throws(() => jwt.verify(later, SECRET), { name: 'NotBeforeError' });
});

test('an expired token is refused as expired', () => {
    const token = mintToken({ secret: SECRET, sub: 'u', expiresIn: 60, now: NOW - 120 });
    assert.throws(() => jwt.verify(token, SECRET), { name: 'TokenExpiredError' });
});

test('jsonwebtoken signs the same claims into the same token', () => {
    for (const [options, claims] of [
        [{ sub: 'user-42', topics: ['*'], now: NOW }, { sub: 'user-42', exp: NOW + 3600, topics: ['*'] }],
        [{ sub: 'ü', topics: [], expiresIn: 5, audience: 'feeds', issuer: 'app', now: NOW },
            { sub: 'ü', exp: NOW + 5, topics: [], aud: 'feeds', iss: 'app' }],
    ]) {
        const theirs = jwt.sign(claims, SECRET, { algorithm: 'HS256', noTimestamp: true });
        assert.equal(mintToken({ secret: SECRET, ...options }), theirs);
    }
    const buffer = Buffer.from('00ff10', 'hex');
    assert.equal(mintToken({ secret: buffer, sub: 'u', now: NOW }),
        jwt.sign({ sub: 'u', exp: NOW + 3600, topics: [] }, buffer, { noTimestamp: true }));
});

test('claims the gateway would refuse are refused here, with what is wrong', () => {
    const bad = [
        [{ sub: 'u' }, /a secret/],
        [{ secret: SECRET }, /sub \(the user key\)/],
        [{ secret: SECRET, sub: 'x'.repeat(257) }, /at most 256 bytes/],
        [{ secret: SECRET, sub: 'a\nb' }, /control characters/],
        [{ secret: SECRET, sub: 'u', topics: 'mp_id:*' }, /topics must be an array/],
        [{ secret: SECRET, sub: 'u', topics: ['mp_id:?'] }, /only \* is a wildcard/],
        [{ secret: SECRET, sub: 'u', topics: [''] }, /non-empty string/],
        [{ secret: SECRET, sub: 'u', expiresIn: 0 }, /expiresIn/],
        [{ secret: SECRET, sub: 'u', expiresIn: 1.5 }, /expiresIn/],
        [{ secret: SECRET, sub: 'u', audience: [''] }, /audience/],
        [{ secret: SECRET, sub: 'u', issuer: 7 }, /issuer/],
    ];
    for (const [options, message] of bad) assert.throws(() => mintToken(options), message, JSON.stringify(options));
});
