// Invariant I5 with the npm eventsource client: while a writer commits events at random intervals,
// the client is disconnected at random moments, in three ways:
//   - it closes and opens a new EventSource with its last id as the Last-Event-ID header,
//   - or with the last id as ?lastEventId= (what survives a page reload),
//   - or a proxy between it and the gateway drops the connection, and the library reconnects by
//     itself with the Last-Event-ID it keeps.
// It must receive every event it may see exactly once, in stream order: the activity and read
// events after the first connection's `connected` id, compared with the stream itself (XRANGE,
// filtered by the token's topics and user), which test/notifier/sse_gateway.py (scenario
// eventsource_resume) writes to PGFEED_SSE_DONE once its writer has finished.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { env, skip, sleep, waitFor, openEventSource, startProxy, compareIds, random } from './helpers.mjs';

test('I5: every event once, in stream order, across random reconnects', { skip, timeout: 240000 }, async () => {
  const rng = random(env.seed);
  const proxy = await startProxy(env.port);
  const received = []; // [id, kind, data] of activity and read events
  const problems = [];
  const stats = { opens: 0, headerReopens: 0, queryReopens: 0, cuts: 0, libraryReconnects: 0, errors: [], resets: [] };
  let es = null;
  let lastId = null; // what a browser keeps: the id of the last event that had one
  let firstConnectedId = null;
  let sent = null; // the Last-Event-ID the current connection asked for (header, else query)
  let awaitingConnected = false;

  const open = (how) => {
    const url = new URL(`http://127.0.0.1:${proxy.port}/v1/stream`);
    const headers = { Authorization: `Bearer ${env.token}` };
    if (lastId && how === 'query') url.searchParams.set('lastEventId', lastId);
    if (lastId && how === 'header') headers['Last-Event-ID'] = lastId;
    stats.opens += 1;
    let requests = 0; // the first request, then the library's own reconnects
    const source = openEventSource(url, headers, (requestUrl, requestHeaders) => {
      sent = requestHeaders['Last-Event-ID'] || new URL(requestUrl).searchParams.get('lastEventId') || null;
      awaitingConnected = true;
      requests += 1;
      if (requests > 1) stats.libraryReconnects += 1;
    });
    const onEvent = (type) => (e) => {
      if (source !== es) return; // a closed one
      if (awaitingConnected && type !== 'connected') {
        problems.push(`a connection (Last-Event-ID ${sent}) started with ${type} ${e.lastEventId}, not connected`);
      }
      if (type === 'connected') {
        awaitingConnected = false;
        if (firstConnectedId === null) {
          firstConnectedId = e.lastEventId;
          if (env.ready) fs.writeFileSync(env.ready, firstConnectedId);
        } else if (sent !== null && e.lastEventId !== sent) {
          // The client keeps this id: anything between `sent` and it would be lost (if greater)
          // or come twice (if smaller) after the next disconnect.
          problems.push(`resumed with Last-Event-ID ${sent}, the connected event has id ${e.lastEventId}`);
        }
      } else if (type === 'reset') {
        stats.resets.push(`${sent} -> ${e.data}`);
      } else {
        received.push([e.lastEventId, type, e.data]);
      }
      if (e.lastEventId) lastId = e.lastEventId;
    };
    for (const type of ['connected', 'activity', 'read', 'reset']) source.addEventListener(type, onEvent(type));
    source.addEventListener('message', (e) => problems.push(`an unnamed event: ${e.data}`));
    source.addEventListener('error', (e) => {
      if (source !== es) return;
      if (e.code !== undefined) stats.errors.push(`${e.code} ${e.message}`); // an HTTP refusal: fatal for EventSource
    });
    es = source;
    return source;
  };

  open('initial');
  await waitFor(() => firstConnectedId, 'the first connected event', 15000);

  // Disrupt until the writer is done.
  while (!fs.existsSync(env.done)) {
    await sleep(50 + rng() * 400);
    const r = rng();
    if (r < 0.25) {
      es.close();
      stats.headerReopens += 1;
      open('header');
    } else if (r < 0.45) {
      es.close();
      stats.queryReopens += 1;
      open('query');
    } else if (r < 0.8) {
      stats.cuts += proxy.cut() > 0 ? 1 : 0;
    }
    if (es.readyState === 2) { // refused (non-200): EventSource gives up; a page would reopen it
      stats.errors.push('closed by a refusal; reopened');
      open('header');
    }
  }
  const expectedAll = JSON.parse(fs.readFileSync(env.done, 'utf8'));
  const expected = expectedAll.filter((e) => compareIds(e[0], firstConnectedId) > 0);
  assert.ok(expected.length > 100, `only ${expected.length} events to expect: the writer did not run`);
  const lastExpected = expected[expected.length - 1][0];
  try {
    await waitFor(() => lastId && compareIds(lastId, lastExpected) >= 0, `the last event ${lastExpected}`, 30000);
  } finally {
    es.close();
    await proxy.close();
    if (env.out) fs.writeFileSync(env.out, JSON.stringify({ stats, received: received.length, expected: expected.length, problems }));
  }

  const seen = new Map();
  received.forEach(([id], i) => {
    if (seen.has(id)) problems.push(`id ${id} received twice (#${seen.get(id)} and #${i})`);
    seen.set(id, i);
    if (i > 0 && compareIds(id, received[i - 1][0]) <= 0) problems.push(`id ${id} (#${i}) after ${received[i - 1][0]}: out of order`);
  });
  const want = new Map(expected.map((e) => [e[0], e]));
  const missing = expected.filter((e) => !seen.has(e[0])).map((e) => e[0]);
  if (missing.length) problems.push(`${missing.length} of ${expected.length} events never received, first ${missing.slice(0, 8)}`);
  const extra = received.filter((r) => !want.has(r[0])).map((r) => r[0]);
  if (extra.length) problems.push(`${extra.length} events it may not see, first ${extra.slice(0, 8)}`);
  const altered = received.filter((r) => want.has(r[0]) && JSON.stringify(r) !== JSON.stringify(want.get(r[0])));
  if (altered.length) problems.push(`${altered.length} events differ from the stream, first ${JSON.stringify(altered[0])}`);
  if (stats.resets.length) problems.push(`reset events, though nothing was trimmed: ${stats.resets.slice(0, 3)}`);
  if (stats.errors.length) problems.push(`refusals: ${stats.errors.slice(0, 5)}`);
  assert.deepEqual(problems.slice(0, 20), [], `${received.length} received, ${expected.length} expected; ${JSON.stringify(stats)}`);
  console.log(`# i5: ${received.length} events, ${stats.opens} connections opened (${stats.headerReopens} header, ` +
    `${stats.queryReopens} query reopens), ${stats.cuts} cuts, ${stats.libraryReconnects} library reconnects`);
});
