// The TypeScript declarations (pgfeed.d.ts), through the package's own `exports` as an app's
// tsc sees them: test/types/usage.ts must compile; test/types/mistakes.ts must fail with exactly
// the errors its lines name (`// TS2322 why`).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const HERE = path.dirname(fileURLToPath(import.meta.url));
const CLIENT = path.resolve(HERE, '..');
const TSC = path.join(CLIENT, 'node_modules', 'typescript', 'bin', 'tsc');

async function tsc(project) {
    try {
        const { stdout } = await run('node', [TSC, '-p', path.join(HERE, 'types', project), '--pretty', 'false'], { cwd: CLIENT });
        return { status: 0, output: stdout };
    } catch (error) {
        if (typeof error.code !== 'number') throw error;
        return { status: error.code, output: error.stdout };
    }
}

test('the typed usage sample compiles', async () => {
    const { status, output } = await tsc('tsconfig.json');
    assert.equal(status, 0, output);
});

test('the mistakes sample fails with the errors its lines name, and no others', async () => {
    const { status, output } = await tsc('tsconfig.mistakes.json');
    assert.notEqual(status, 0, 'tsc must refuse it');
    const found = [...output.matchAll(/mistakes\.ts\((\d+),\d+\): error (TS\d+)/g)].map((m) => `${m[1]} ${m[2]}`);
    const lines = fs.readFileSync(path.join(HERE, 'types', 'mistakes.ts'), 'utf8').split('\n');
    const expected = lines.flatMap((line, i) => {
        const marked = line.match(/\/\/ (TS\d+) /);
        return marked ? [`${i + 1} ${marked[1]}`] : [];
    });
    assert.ok(expected.length >= 8);
    assert.deepEqual(found, expected, output);
});

test('every export of the modules is declared', async () => {
    const declared = (file) => new Set([...fs.readFileSync(path.join(CLIENT, file), 'utf8')
        .matchAll(/^export (?:function|const) (\w+)/gm)].map((m) => m[1]));
    for (const [module, types] of [['../pgfeed.js', 'pgfeed.d.ts'], ['../react/index.js', 'react/index.d.ts']]) {
        const names = Object.keys(await import(module)).sort();
        assert.deepEqual(names, [...declared(types)].sort(), types);
    }
});
