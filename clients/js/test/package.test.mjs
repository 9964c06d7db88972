// The npm package as an app gets it: `npm pack`, then `npm install ./tarball` into a scratch
// project (offline: the package has no dependencies to fetch; React, the optional peer of
// pgfeed/react, comes from this directory's node_modules) and an ESM import of every entry point
// in node. The version must be the project's (META.json, extension/pgfeed.control).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const CLIENT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const ROOT = path.resolve(CLIENT, '..', '..');
const manifest = JSON.parse(fs.readFileSync(path.join(CLIENT, 'package.json'), 'utf8'));

test("the package's version is the project's", () => {
    const meta = JSON.parse(fs.readFileSync(path.join(ROOT, 'META.json'), 'utf8'));
    const control = fs.readFileSync(path.join(ROOT, 'extension', 'pgfeed.control'), 'utf8');
    assert.equal(manifest.version, meta.version);
    assert.match(control, new RegExp(`^default_version = '${manifest.version.replaceAll('.', '\\.')}'$`, 'm'));
});

test('npm pack gives a tarball that installs into a scratch project and imports', async (t) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgfeed-pack.'));
    t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
    const npm = (args, cwd) => run('npm', [...args, '--no-audit', '--no-fund', '--loglevel=error'], { cwd, timeout: 120000 });

    const { stdout } = await npm(['pack', '--json', '--pack-destination', dir], CLIENT);
    const [packed] = JSON.parse(stdout);
    const files = packed.files.map((f) => f.path).sort();
    assert.ok(files.includes('pgfeed.js') && files.includes('pgfeed.d.ts'), files.join(' '));
    assert.deepEqual(files.filter((f) => f.startsWith('test/') || f.includes('node_modules')), [], 'no tests in the package');
    for (const target of Object.values(manifest.exports).flatMap((e) => (typeof e === 'string' ? [e] : Object.values(e))))
        assert.ok(files.includes(target.replace(/^\.\//, '')), `${target} is packed`);

    const app = path.join(dir, 'app');
    fs.mkdirSync(app);
    fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'scratch-app', private: true, type: 'module' }));
    await npm(['install', '--offline', path.join(dir, packed.filename)], app);
    assert.ok(!fs.existsSync(path.join(app, 'node_modules', 'react')), 'React is not installed for pgfeed alone');
    await npm(['install', '--offline', path.join(CLIENT, 'node_modules', 'react')], app);
    fs.writeFileSync(path.join(app, 'main.mjs'), `
        import { createFeedClient, createFeedApi, backoffDelay, retryAfterMs, DEFAULT_FEED } from 'pgfeed';
        import { mintToken } from 'pgfeed/token';
        import { usePgfeed, useUnreadCount } from 'pgfeed/react';
        const seen = [];
        const client = createFeedClient({ token: 't', storage: null, fetch: async (url) => { seen.push(url); throw new Error('offline'); } });
        client.close();
        const api = createFeedApi({ token: 't', fetch: async () => new Response('{"topics":[]}') });
        console.log(JSON.stringify({ seen, state: client.state.value, follows: await api.follows(), DEFAULT_FEED,
            types: [typeof backoffDelay, typeof retryAfterMs], hooks: [typeof usePgfeed, typeof useUnreadCount], token: mintToken({ secret: 's', sub: 'u' }).split('.').length }));
    `);
    const out = JSON.parse((await run('node', ['main.mjs'], { cwd: app })).stdout);
    assert.deepEqual(out, { seen: [], state: 'closed', follows: { topics: [] }, DEFAULT_FEED: 'following', types: ['function', 'function'], hooks: ['function', 'function'], token: 3 });
});
