// The demo page (demo/web) in headless Chromium, as alice in two tabs of one browser (so they share
// localStorage like real tabs), against real servers (servers.mjs): the first page of her Following
// feed and its badge; an activity committed in PostgreSQL arriving live in both tabs; read state
// changed in one tab showing in the other; Redis stopped (both tabs poll and keep updating) and
// started again (both go live again, nothing missed or doubled); following an MP and back.
// The steps run in order on the same servers and tabs; after a failed step the ones that build on
// it are skipped. Screenshots go to build/test-output/e2e/. Every wait is a condition with a deadline.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { Servers, ROOT, waitUntil } from './servers.mjs';

const CHROMIUM = process.env.PGFEED_CHROMIUM || '/usr/bin/chromium';
const SHOTS = path.join(ROOT, 'build', 'test-output', 'e2e');
const USER = 'alice';
const POLL_MS = 500;
const FOLLOWED = ['mp_id:12', 'mp_id:42', 'mp_id:7']; // demo/parliament.sql

let servers;
let browser;
const tabs = []; // {name, page, log: console lines, uncaught errors, HTTP errors}
const inserted = []; // {id, position} of the activities this test committed, oldest first
let setupFailed = false;

// Read by the waits inside the pages: the DOM contract of the demo page, and nothing else.
function domContract() {
  const byTestId = (id) => document.querySelector(`[data-testid="${id}"]`);
  const text = (id) => (byTestId(id)?.textContent ?? '').trim();
  window.e2e = {
    state: () => text('state'),
    badge: () => text('badge'),
    user: () => text('user'),
    items: () => [...document.querySelectorAll('[data-testid="feed-list"] [data-testid="item"]')].map((el) => ({
      position: Number(el.dataset.position), id: Number(el.dataset.activityId), read: el.dataset.read,
    })),
    toast: () => {
      const el = byTestId('toast');
      const shown = !!el && !el.hidden && el.getClientRects().length > 0 && getComputedStyle(el).visibility !== 'hidden';
      return { count: Number(el?.dataset.count || 0), text: (el?.textContent ?? '').trim(), shown };
    },
  };
}

// What a tab shows, for failure messages.
async function describe(tab) {
  try {
    return JSON.stringify(await tab.page.evaluate(() => {
      const items = window.e2e.items();
      return { state: window.e2e.state(), badge: window.e2e.badge(), toast: window.e2e.toast(),
        items: items.length, first: items.slice(0, 8) };
    }));
  } catch (e) {
    return `(cannot read the page: ${e.message})`;
  }
}

// Waits until `fn(arg)`, evaluated in the tab's page, is truthy.
async function waitTab(tab, what, fn, arg, ms = 15000) {
  try {
    await tab.page.waitForFunction(fn, arg, { timeout: ms, polling: 50 });
  } catch (e) {
    const why = e.name === 'TimeoutError' ? `not within ${ms} ms` : e.message.split('\n')[0];
    throw new Error(`${tab.name}: ${what}: ${why}; it shows ${await describe(tab)}`);
  }
}

// waitTab in every tab at once; the failure names each tab that did not get there.
async function waitTabs(what, fn, arg, ms) {
  const results = await Promise.allSettled(tabs.map((tab) => waitTab(tab, what, fn, arg, ms)));
  const failures = results.filter((r) => r.status === 'rejected').map((r) => r.reason.message);
  if (failures.length) throw new Error(failures.join('\n'));
}

async function unread() {
  return Number(await servers.sql(`SELECT pgfeed.unread_count('${USER}', 'following')`));
}

async function waitBadgesMatchSql(what, ms = 15000) {
  const n = await unread();
  await waitTabs(`${what}: the badge to say ${n}, as pgfeed.unread_count does`, (n) => window.e2e.badge() === String(n), n, ms);
  assert.equal(await unread(), n, `${what}: pgfeed.unread_count changed while the badges caught up`);
  return n;
}

async function insertActivity(mpId, type = 'vote') {
  const id = Number(await servers.sql(
    `INSERT INTO activities (type, mp_id, bill_id, created_at) VALUES ('${type}', ${mpId}, 3, now()) RETURNING id`));
  await servers.sql('CALL pgfeed.flush()'); // numbered after commit: wait for its position
  const position = Number(await servers.sql(
    `SELECT position FROM pgfeed.items WHERE activity_id = ${id} AND source = 'activities'::regclass AND NOT deleted`));
  inserted.push({ id, position });
  return { id, position };
}

// Each activity in `activities` shown exactly once in every tab, unread.
function waitShownUnread(what, activities, ms) {
  return waitTabs(`${what}: activities ${activities.map((a) => a.id)} shown once each, unread`, (want) => {
    const items = window.e2e.items();
    return want.every(({ id, position }) => {
      const found = items.filter((i) => i.id === id);
      return found.length === 1 && found[0].position === position && found[0].read === 'false';
    });
  }, activities, ms);
}

async function screenshot(t, name) {
  fs.mkdirSync(SHOTS, { recursive: true });
  for (const [i, tab] of tabs.entries()) {
    const file = path.join(SHOTS, `${name}-tab${i + 1}.png`);
    await tab.page.screenshot({ path: file, fullPage: true });
    t.diagnostic(`screenshot ${path.relative(ROOT, file)}`);
  }
}

const toggleRead = (tab, id) => tab.page.locator(`[data-testid="feed-list"] [data-testid="item"][data-activity-id="${id}"] [data-testid="toggle-read"]`);
const followToggle = (tab, topic) => tab.page.locator(`[data-testid="mp-list"] [data-testid="mp"][data-topic="${topic}"] [data-testid="follow-toggle"]`);

async function followsInSql() {
  return (await servers.sql(`SELECT f.topic FROM pgfeed.follows f JOIN pgfeed.readers r USING (user_id)
                              WHERE r.user_key = '${USER}' ORDER BY 1`)).split('\n').filter(Boolean);
}

// Step `number` of the flow. `needs` lists the numbers of the steps it builds on ('all': every
// earlier one); it is skipped when one of them did not pass. A step that times out stays failed.
const outcome = new Map(); // step number → passed
function step(number, title, fn, { needs = 'all', timeout = 60000 } = {}) {
  test(`${number}: ${title}`, { timeout }, async (t) => {
    const unmet = needs === 'all' ? [...outcome].filter(([, ok]) => !ok).map(([n]) => n)
      : needs.filter((n) => !outcome.get(n));
    outcome.set(number, false);
    if (unmet.length || !tabs.length) {
      t.skip(unmet.length ? `step ${unmet.join(', ')} did not pass` : 'no servers and tabs');
      return;
    }
    try {
      await fn(t);
      outcome.set(number, true);
    } catch (e) {
      await screenshot(t, `failed-step${number}`).catch(() => {});
      throw e;
    }
  });
}

before(async () => {
  fs.rmSync(SHOTS, { recursive: true, force: true }); // no screenshot of an earlier run mistaken for this one's
  try {
    servers = await Servers.start((line) => process.stdout.write(`# ${line}\n`));
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
    const context = await browser.newContext({ viewport: { width: 1100, height: 900 } });
    await context.addInitScript(domContract);
    const url = `${servers.baseUrl}/#token=${servers.token(USER)}&poll=${POLL_MS}`;
    for (const name of ['tab 1', 'tab 2']) {
      const page = await context.newPage();
      const tab = { name, page, log: [] };
      page.on('console', (m) => tab.log.push(`${m.type()}: ${m.text()}`));
      page.on('pageerror', (e) => tab.log.push(`uncaught: ${e.stack || e.message}`));
      page.on('response', (r) => {
        if (r.status() >= 400) tab.log.push(`HTTP ${r.status()}: ${r.request().method()} ${r.url().split('?')[0]}`);
      });
      const response = await page.goto(url);
      assert.equal(response?.status(), 200, `${name}: GET / of the notifier's static_dir`);
      tabs.push(tab);
    }
  } catch (e) {
    setupFailed = true;
    throw e;
  }
}, { timeout: 180000 });

after(async () => {
  const failed = setupFailed || [...outcome.values()].some((ok) => !ok);
  if (failed && servers) {
    for (const [i, tab] of tabs.entries()) {
      fs.writeFileSync(path.join(servers.dir, `tab${i + 1}-console.log`), tab.log.join('\n') + '\n');
    }
  }
  await browser?.close().catch(() => {});
  await servers?.finish(!failed);
}, { timeout: 120000 });

step(1, 'both tabs go live and show the first page of Following and its unread count', async (t) => {
  const t0 = Date.now();
  await waitTabs('state live', () => window.e2e.state() === 'live', undefined, 20000);
  t.diagnostic(`live ${Date.now() - t0} ms after the tabs loaded`);
  await waitTabs('items in the list', () => window.e2e.items().length > 0);
  await waitBadgesMatchSql('first load');
  t.diagnostic(`list and badge ${Date.now() - t0} ms after the tabs loaded`);
  for (const tab of tabs) {
    assert.equal(await tab.page.evaluate(() => window.e2e.user()), USER, `${tab.name}: [data-testid=user]`);
    assert.equal(await tab.page.getByTestId('feed-following').getAttribute('aria-pressed'), 'true',
      `${tab.name}: feed-following aria-pressed (the default feed)`);
    assert.notEqual(await tab.page.getByTestId('feed-all').getAttribute('aria-pressed'), 'true',
      `${tab.name}: feed-all aria-pressed`);
    const shown = await tab.page.evaluate(() => window.e2e.items());
    const rows = (await servers.sql(`SELECT position, activity_id, is_read FROM pgfeed.page('${USER}', 'following', ${shown.length})`))
      .split('\n').map((r) => r.split('|')).map(([p, id, r]) => ({ position: Number(p), id: Number(id), read: r === 't' ? 'true' : 'false' }));
    assert.deepEqual(shown, rows, `${tab.name}: the list is pgfeed.page('${USER}', 'following') newest first`);
  }
  await screenshot(t, 'live');
});

step(2, 'an activity of a followed MP arrives live at the top of both tabs, unread', async () => {
  const toastBefore = await Promise.all(tabs.map((tab) => tab.page.evaluate(() => window.e2e.toast().count)));
  const badgeBefore = await unread();
  const activity = await insertActivity(7, 'speech');
  await waitTabs(`activity ${activity.id} (position ${activity.position}) first in the list, unread`, ({ id, position }) => {
    const [first] = window.e2e.items();
    return first?.id === id && first.position === position && first.read === 'false';
  }, activity);
  assert.equal(await waitBadgesMatchSql('after the insert'), badgeBefore + 1, 'pgfeed.unread_count went up by one');
  for (const [i, tab] of tabs.entries()) {
    await waitTab(tab, `toast data-count ${toastBefore[i]} + 1`, (n) => window.e2e.toast().count === n, toastBefore[i] + 1);
    const toast = await tab.page.evaluate(() => window.e2e.toast());
    assert.ok(toast.shown && toast.text.includes(String(toast.count)), `${tab.name}: toast shown with its count: ${JSON.stringify(toast)}`);
  }
  await tabs[0].page.getByTestId('toast').click();
  await waitTab(tabs[0], 'toast reset to 0 and hidden or empty after a click',
    () => { const t = window.e2e.toast(); return t.count === 0 && (!t.shown || t.text === ''); });
});

step(3, 'toggling read in one tab shows in the other, with the badge', async () => {
  const { id } = inserted.at(-1);
  const before = await unread();
  await toggleRead(tabs[0], id).click();
  await waitUntil(async () => (await servers.sql(`SELECT pgfeed.is_read('${USER}', ${id})`)) === 't',
    `pgfeed.is_read('${USER}', ${id}) after "Mark read" in tab 1`);
  await waitTabs(`activity ${id} data-read="true"`, (id) => window.e2e.items().find((i) => i.id === id)?.read === 'true', id);
  assert.equal(await waitBadgesMatchSql('after Mark read'), before - 1, 'unread_count dropped by one');
  assert.match(await toggleRead(tabs[1], id).textContent(), /unread/i, 'tab 2: the toggle of a read item offers "Mark unread"');

  await toggleRead(tabs[1], id).click();
  await waitUntil(async () => (await servers.sql(`SELECT pgfeed.is_read('${USER}', ${id})`)) === 'f',
    `pgfeed.is_read('${USER}', ${id}) false after "Mark unread" in tab 2`);
  await waitTabs(`activity ${id} data-read="false" again`, (id) => window.e2e.items().find((i) => i.id === id)?.read === 'false', id);
  assert.equal(await waitBadgesMatchSql('after Mark unread'), before, 'unread_count back up');
});

step(4, 'mark all read in one tab: badge 0 in both, every item read', async () => {
  await tabs[1].page.getByTestId('mark-all-read').click();
  await waitUntil(async () => (await unread()) === 0, `pgfeed.unread_count('${USER}', 'following') to be 0 after mark-all-read`);
  await waitTabs('badge 0', () => window.e2e.badge() === '0');
  await waitTabs('every item data-read="true"', () => window.e2e.items().every((i) => i.read === 'true'));
});

step(5, 'with redis-server stopped both tabs poll, and show what is committed meanwhile', async (t) => {
  await servers.redis.stop();
  const t0 = Date.now();
  await waitUntil(async () => (await servers.notifier.readyz())?.mode === 'poll', '/readyz to say mode poll');
  await waitTabs('state polling after redis-server stopped', () => window.e2e.state() === 'polling', undefined, 20000);
  t.diagnostic(`polling ${Date.now() - t0} ms after redis-server stopped`);
  const during = [];
  for (const mp of [12, 42, 7]) during.push(await insertActivity(mp));
  await waitShownUnread('while polling', during, 15000);
  await waitBadgesMatchSql('while polling');
  await waitTabs('still polling', () => window.e2e.state() === 'polling');
  await screenshot(t, 'polling');
});

step(6, 'with redis-server back both tabs go live again; nothing missed, nothing twice', async (t) => {
  await servers.redis.start();
  const t0 = Date.now();
  await waitTabs('state live after redis-server restarted', () => window.e2e.state() === 'live', undefined, 30000);
  t.diagnostic(`live ${Date.now() - t0} ms after redis-server started again`);
  const after = [await insertActivity(42, 'bill_stage'), await insertActivity(12)];
  await waitShownUnread('live again', after, 15000);
  await waitBadgesMatchSql('live again');
  const newestFirst = inserted.map((a) => a.id).reverse();
  for (const tab of tabs) {
    const items = await tab.page.evaluate(() => window.e2e.items());
    for (const { id } of inserted) {
      assert.equal(items.filter((i) => i.id === id).length, 1, `${tab.name}: activity ${id} shown exactly once`);
    }
    const unordered = items.findIndex((item, i) => i > 0 && !(item.position < items[i - 1].position));
    assert.equal(unordered, -1, `${tab.name}: data-position strictly descending; item ${unordered}: ` +
      JSON.stringify(items.slice(Math.max(0, unordered - 1), unordered + 1)));
    assert.deepEqual(items.slice(0, newestFirst.length).map((i) => i.id), newestFirst,
      `${tab.name}: the activities of this test at the top, newest first`);
  }
  await screenshot(t, 'resumed');
});

step(7, 'unfollow an MP in tab 1 and follow it again', async () => {
  const topic = 'mp_id:7';
  assert.deepEqual(await followsInSql(), FOLLOWED, 'follows before');
  for (const tab of tabs) {
    assert.equal(await followToggle(tab, topic).getAttribute('aria-pressed'), 'true', `${tab.name}: ${topic} shown followed`);
  }
  const unreadOfTopic = Number(await servers.sql(
    `SELECT count(*) FROM pgfeed.page('${USER}', '${topic}', 1000, unread_only => true)`));
  const unreadBefore = await waitBadgesMatchSql('before the unfollow');
  const toggle = followToggle(tabs[0], topic);
  await toggle.click();
  await waitTab(tabs[0], `${topic} follow-toggle aria-pressed="false"`,
    (sel) => document.querySelector(sel)?.getAttribute('aria-pressed') === 'false',
    `[data-testid="mp"][data-topic="${topic}"] [data-testid="follow-toggle"]`);
  await waitUntil(async () => !(await followsInSql()).includes(topic), `pgfeed.follows without ${topic}`);
  assert.deepEqual((await servers.apiGet(USER, '/v1/follows')).topics.sort(), FOLLOWED.filter((f) => f !== topic),
    'GET /v1/follows after the unfollow');
  await waitTab(tabs[0], `the badge to drop by the ${unreadOfTopic} unread items of ${topic}`,
    (n) => window.e2e.badge() === String(n), unreadBefore - unreadOfTopic);
  assert.equal(await unread(), unreadBefore - unreadOfTopic, `pgfeed.unread_count without ${topic}`);

  await toggle.click();
  await waitTab(tabs[0], `${topic} follow-toggle aria-pressed="true" again`,
    (sel) => document.querySelector(sel)?.getAttribute('aria-pressed') === 'true',
    `[data-testid="mp"][data-topic="${topic}"] [data-testid="follow-toggle"]`);
  await waitUntil(async () => (await followsInSql()).includes(topic), `pgfeed.follows with ${topic} again`);
  assert.deepEqual((await servers.apiGet(USER, '/v1/follows')).topics.sort(), FOLLOWED, 'GET /v1/follows after following again');
  await waitTab(tabs[0], `the badge back to ${unreadBefore}`, (n) => window.e2e.badge() === String(n), unreadBefore);
}, { needs: [1] });

step(8, 'no uncaught exception in either tab', async () => {
  for (const tab of tabs) {
    const uncaught = tab.log.filter((line) => line.startsWith('uncaught:'));
    assert.deepEqual(uncaught, [], `${tab.name}: uncaught exceptions`);
  }
}, { needs: [] });
