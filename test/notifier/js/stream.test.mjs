// The npm eventsource client against the gateway: live events committed in PostgreSQL arrive as
// `event: activity`, after `event: connected`; the token can come from ?access_token=; a refused
// token fails the EventSource with its status. Run by test/notifier/sse_gateway.py (scenario
// live_events), which passes the port, a token and the feed database.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { EventSource } from 'eventsource';
import { env, skip, waitFor, openEventSource, compareIds } from './helpers.mjs';

const url = () => `http://127.0.0.1:${env.port}/v1/stream`;

// Records every event of the types the gateway sends, in arrival order.
function record(es) {
  const events = [];
  for (const type of ['connected', 'activity', 'read', 'reset', 'message']) {
    es.addEventListener(type, (e) => events.push({ type, id: e.lastEventId, data: e.data }));
  }
  return events;
}

function insertActivity(mpId, kind) {
  const out = execFileSync('psql', ['-X', '-At', '-v', 'ON_ERROR_STOP=1', '-d', env.db, '-c',
    `INSERT INTO activities (mp_id, kind) VALUES (${mpId}, '${kind}') RETURNING id`], { encoding: 'utf8' });
  return Number(out.trim().split('\n')[0]);
}

test('an EventSource gets connected first, then the activity committed in PostgreSQL', { skip, timeout: 30000 }, async () => {
  const es = openEventSource(url(), { Authorization: `Bearer ${env.token}` });
  try {
    const events = record(es);
    await waitFor(() => events.length > 0, 'the first event');
    assert.equal(events[0].type, 'connected', `first event: ${JSON.stringify(events[0])}`);
    assert.match(events[0].id, /^\d+-\d+$/);
    const hello = JSON.parse(events[0].data);
    assert.equal(hello.user, env.user);
    assert.ok(Array.isArray(hello.topics), `connected data: ${events[0].data}`);

    const kind = `from-node-${process.pid}`;
    const id = insertActivity(7, kind);
    const got = await waitFor(() => events.find((e) => e.type === 'activity' && JSON.parse(e.data).activity_id === id),
      `the activity event of activity ${id}`);
    const data = JSON.parse(got.data);
    assert.equal(data.op, 'insert');
    assert.equal(data.topic, 'mp_id:7');
    assert.equal(data.payload.kind, kind);
    assert.ok(compareIds(got.id, events[0].id) > 0, `activity id ${got.id} not after connected id ${events[0].id}`);
    assert.equal(es.readyState, EventSource.OPEN);
  } finally {
    es.close();
  }
});

test('?access_token= authenticates an EventSource that cannot set headers', { skip, timeout: 30000 }, async () => {
  const es = new EventSource(`${url()}?access_token=${encodeURIComponent(env.token)}`);
  try {
    const events = record(es);
    await waitFor(() => events.length > 0, 'the first event');
    assert.equal(events[0].type, 'connected');
  } finally {
    es.close();
  }
});

test('a refused token fails the EventSource with 401 and no retry', { skip, timeout: 30000 }, async () => {
  const es = openEventSource(url(), { Authorization: 'Bearer not.a.token' });
  try {
    const error = await new Promise((resolve) => es.addEventListener('error', resolve));
    assert.equal(error.code, 401, `error: ${error.message}`);
    assert.equal(es.readyState, EventSource.CLOSED);
  } finally {
    es.close();
  }
});
