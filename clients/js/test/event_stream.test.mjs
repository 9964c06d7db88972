import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createEventStreamParser } from '../pgfeed.js';

function parse(chunks) {
    const out = [];
    const parser = createEventStreamParser({
        onEvent: (e) => out.push(e),
        onComment: () => out.push('comment'),
    });
    for (const chunk of chunks) parser.push(chunk);
    return out;
}

// The HTML standard's examples, and the line endings it allows, split at every byte.
const STREAM = 'retry: 3000\r\n\r\nid: 1-0\r\nevent: connected\r\ndata: {"a":1}\r\n\r\n: heartbeat\n\n'
    + 'data: first\ndata:second\r\rdata\n\nid: 2-0\revent: activity\rdata:  two spaces\r\r'
    + 'event: lone\n\ndata: at the end without a blank line';
const EXPECTED = [
    { type: 'connected', data: '{"a":1}', lastEventId: '1-0' },
    'comment',
    { type: 'message', data: 'first\nsecond', lastEventId: '1-0' },
    { type: 'message', data: '', lastEventId: '1-0' },
    { type: 'activity', data: ' two spaces', lastEventId: '2-0' },
];

test('the event stream as one chunk and split at every place', () => {
    assert.deepEqual(parse([STREAM]), EXPECTED);
    for (let i = 1; i < STREAM.length; i++)
        assert.deepEqual(parse([STREAM.slice(0, i), STREAM.slice(i)]), EXPECTED, `split at ${i}`);
    assert.deepEqual(parse([...STREAM]), EXPECTED, 'a character at a time');
});

test('an id with a NUL is ignored; an event without data is not dispatched', () => {
    assert.deepEqual(parse(['id: 5\n\nid: a\0b\ndata: x\n\nevent: e\n\n']), [{ type: 'message', data: 'x', lastEventId: '5' }]);
});
