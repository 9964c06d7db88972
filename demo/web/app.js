// The demo page: one user's parliament feed from pgfeed-notifier's HTTP feed API, kept live by the
// browser client (./pgfeed.js: Server-Sent Events, polling while the gateway says so).
// Address: /#token=<jwt>[&feed=all|following][&poll=<ms>]; the token never leaves the fragment.
// The data-testid attributes are the contract the end-to-end test drives.
import { createFeedApi, createFeedClient } from './pgfeed.js';

const PAGE_SIZE = 20;
const POLL_PAGE_SIZE = 50;
const BADGE_DELAY_MS = 100;     // bursts of events cost one unread_count request
const RELOAD_RETRY_MS = 3000;
const ERROR_SHOWN_MS = 8000;

const byTestId = (id) => document.querySelector(`[data-testid="${id}"]`);
const ui = {
    user: byTestId('user'),
    state: byTestId('state'),
    badge: byTestId('badge'),
    feedButtons: { following: byTestId('feed-following'), all: byTestId('feed-all') },
    markAllRead: byTestId('mark-all-read'),
    error: byTestId('error'),
    toast: byTestId('toast'),
    list: byTestId('feed-list'),
    end: byTestId('feed-end'),
    mps: byTestId('mp-list'),
    mpFilter: byTestId('mp-filter'),
};

const params = new URLSearchParams(location.hash.slice(1));
const token = params.get('token') || '';
const pollIntervalMs = Number(params.get('poll')) > 0 ? Number(params.get('poll')) : 5000;

const names = { mps: new Map(), bills: new Map() };
const follows = new Set();

// The feed shown. Items are keyed by position (unique and stable), so an item that comes twice, from
// a page and from an event, is one element. The list holds every item of the feed above
// `nextBefore` (all of it when null): events for positions below it are left to infinite scroll.
const view = {
    feed: params.get('feed') === 'all' ? 'all' : 'following',
    generation: 0,      // bumped by every reload, so stale answers are dropped
    items: new Map(),   // position → <li>
    nextBefore: null,
    loading: true,      // the first page is on its way: events wait in `queued`
    queued: [],
    loadingMore: false,
};

// ---- HTTP ------------------------------------------------------------------------------------

const api = token ? createFeedApi({ token }) : null;  // without a token start() explains and stops

let errorTimer = null;
function showError(error) {
    console.warn(error);
    ui.error.textContent = error && error.message ? error.message : String(error);
    ui.error.hidden = false;
    clearTimeout(errorTimer);
    errorTimer = setTimeout(() => { ui.error.hidden = true; ui.error.textContent = ''; }, ERROR_SHOWN_MS);
}

// ---- Rendering -------------------------------------------------------------------------------

const VERBS = {  // with a bill, without one
    vote: ['voted on', 'voted'],
    speech: ['spoke on', 'spoke'],
    bill_stage: ['moved a stage of', 'moved a bill stage'],
};

function mpIdOf(topic) {
    const match = /^mp_id:(\d+)$/.exec(topic || '');
    return match ? Number(match[1]) : null;
}

function element(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
}

function describe(item) {
    const line = element('p', 'what');
    line.id = `item-${item.position}`;
    const mpId = mpIdOf(item.topic);
    const mp = names.mps.get(mpId);
    line.append(element('strong', 'actor', mp ? mp.name : mpId !== null ? `MP ${mpId}` : 'Someone'));
    if (mp) line.append(' ', element('span', 'party', `(${mp.party})`));
    const payload = item.payload || {};
    const [withBill, withoutBill] = VERBS[payload.type] || ['acted on', 'did something'];
    if (payload.bill_id !== null && payload.bill_id !== undefined) {
        const bill = names.bills.get(payload.bill_id);
        line.append(` ${withBill} `, element('span', 'bill', bill ? bill.title : `bill ${payload.bill_id}`));
    } else {
        line.append(` ${withoutBill}`);
    }
    return line;
}

const absoluteTime = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });

function timeText(iso) {
    const at = Date.parse(iso);
    if (Number.isNaN(at)) return '';
    const seconds = (Date.now() - at) / 1000;
    if (seconds < -60 || seconds >= 86400) return absoluteTime.format(at);
    if (seconds < 45) return 'just now';
    if (seconds < 3600) return `${Math.round(seconds / 60)} min ago`;
    return `${Math.round(seconds / 3600)} h ago`;
}

function setTime(li, iso) {
    const time = li.querySelector('time');
    time.dateTime = iso;
    time.title = Number.isNaN(Date.parse(iso)) ? '' : absoluteTime.format(Date.parse(iso));
    time.textContent = timeText(iso);
}

function renderItem(item) {
    const li = element('li', 'item');
    li.dataset.testid = 'item';
    li.dataset.position = item.position;
    li.dataset.activityId = item.activity_id;
    li.dataset.topic = item.topic || '';
    const dot = element('span', 'dot');
    dot.setAttribute('aria-hidden', 'true');
    const body = element('div', 'body');
    body.append(describe(item), element('time'));
    const toggle = element('button', 'toggle');
    toggle.type = 'button';
    toggle.dataset.testid = 'toggle-read';
    toggle.setAttribute('aria-describedby', `item-${item.position}`);
    li.append(dot, body, toggle);
    setTime(li, item.created_at);
    setRead(li, item.is_read);
    return li;
}

function setRead(li, read) {
    li.dataset.read = String(Boolean(read));
    li.querySelector('[data-testid="toggle-read"]').textContent = read ? 'Mark unread' : 'Mark read';
}

function newestPosition() {
    const first = ui.list.firstElementChild;
    return first ? Number(first.dataset.position) : null;
}

// Adds the item in newest-first order, or refreshes the read state of the element it already has.
// Returns true when it is new.
function place(item) {
    const shown = view.items.get(item.position);
    if (shown) {
        setRead(shown, item.is_read);
        return false;
    }
    const li = renderItem(item);
    view.items.set(item.position, li);
    const last = ui.list.lastElementChild;
    if (!last || Number(last.dataset.position) > item.position) {
        ui.list.append(li);  // a next page
        return true;
    }
    let next = ui.list.firstElementChild;  // live items land near the top
    while (Number(next.dataset.position) > item.position) next = next.nextElementSibling;
    ui.list.insertBefore(li, next);
    return true;
}

function removeItem(position) {
    const li = view.items.get(position);
    if (!li) return;
    view.items.delete(position);
    li.remove();
}

function clearList() {
    view.items.clear();
    ui.list.replaceChildren();
}

function showListEnd() {
    let text = '';
    if (view.loading || view.loadingMore) text = 'Loading…';
    else if (view.nextBefore === null && view.items.size === 0)
        text = view.feed === 'following' ? 'Nothing here yet: follow MPs in the list to see what they do.'
            : 'Nothing here yet.';
    else if (view.nextBefore === null) text = 'That is the whole feed.';
    ui.end.textContent = text;
}

// ---- Badge and toast -------------------------------------------------------------------------

let badgeTimer = null;
let badgeRequest = 0;

function refreshBadgeSoon() {
    if (badgeTimer === null) badgeTimer = setTimeout(refreshBadge, BADGE_DELAY_MS);
}

async function refreshBadge() {
    badgeTimer = null;
    const request = ++badgeRequest;
    const feed = view.feed;
    try {
        const { unread } = await api.unreadCount({ feed });
        if (request !== badgeRequest || feed !== view.feed) return;
        ui.badge.textContent = String(unread);
        document.title = unread > 0 ? `(${unread}) Parliament tracker` : 'Parliament tracker';
    } catch (error) {
        showError(error);
    }
}

let newCount = 0;
function setNewCount(n) {
    newCount = n;
    ui.toast.dataset.count = String(n);
    ui.toast.textContent = n === 0 ? '' : `${n} new ${n === 1 ? 'activity' : 'activities'}`;
    ui.toast.hidden = n === 0;
}

// ---- Loading pages ---------------------------------------------------------------------------

// Replaces the list with the feed's first page (start, feed switch, follows changed, reset).
async function reload() {
    const generation = ++view.generation;
    view.loading = true;
    view.loadingMore = false;  // a page still on its way belongs to the old list
    view.queued = [];  // what they announce is in the page asked for now
    setNewCount(0);
    showListEnd();
    refreshBadgeSoon();
    let page;
    try {
        page = await api.page({ feed: view.feed, limit: PAGE_SIZE });
    } catch (error) {
        if (generation !== view.generation) return;
        showError(error);
        setTimeout(() => { if (generation === view.generation) reload(); }, RELOAD_RETRY_MS);
        return;
    }
    if (generation !== view.generation) return;
    clearList();
    view.nextBefore = page.next_before;
    page.items.forEach(place);
    view.loading = false;
    // Events that came while the page was on its way may be newer than it.
    for (const event of view.queued.splice(0)) handleEvent(event);
    showListEnd();
    loadMoreIfNearEnd();
}

// Merges the first page into the list: new items, read states, items deleted meanwhile. Used while
// the stream is not there to tell (polling) and when it comes back.
async function refreshTop() {
    if (view.loading) return;
    const generation = view.generation;
    let page;
    try {
        page = await api.page({ feed: view.feed, limit: POLL_PAGE_SIZE });
    } catch (error) {
        showError(error);
        return;
    }
    if (generation !== view.generation || view.loading) return;
    const items = page.items;
    const top = newestPosition();
    if (top !== null && page.next_before !== null && items[items.length - 1].position > top) {
        reload();  // more arrived than a page holds: the list would have a hole
        return;
    }
    if (items.length > 0) {  // what the page's span lacks was deleted (newer items came after it)
        const lowest = page.next_before === null ? -Infinity : items[items.length - 1].position;
        const inPage = new Set(items.map((item) => item.position));
        for (const position of [...view.items.keys()])
            if (position >= lowest && position <= items[0].position && !inPage.has(position)) removeItem(position);
    }
    let added = 0;
    for (const item of items) if (place(item) && (top === null || item.position > top)) added += 1;
    if (top === null) view.nextBefore = page.next_before;
    if (added) setNewCount(newCount + added);
    showListEnd();
}

async function loadMore() {
    if (view.loading || view.loadingMore || view.nextBefore === null) return;
    const generation = view.generation;
    view.loadingMore = true;
    showListEnd();
    try {
        const page = await api.page({ feed: view.feed, limit: PAGE_SIZE, before: view.nextBefore });
        if (generation !== view.generation) return;
        page.items.forEach(place);
        view.nextBefore = page.next_before;
    } catch (error) {
        showError(error);
        return;  // the next scroll tries again
    } finally {
        if (generation === view.generation) view.loadingMore = false;
        showListEnd();
    }
    loadMoreIfNearEnd();
}

const NEAR_END_PX = 600;
function loadMoreIfNearEnd() {
    if (ui.end.getBoundingClientRect().top < window.innerHeight + NEAR_END_PX) loadMore();
}

// ---- Events ----------------------------------------------------------------------------------

function inFeed(feed, topic) {
    return feed === 'all' || feed === topic || (feed === 'following' && follows.has(topic));
}

function handleEvent({ type, data }) {
    if (view.loading) {
        view.queued.push({ type, data });
        return;
    }
    if (type === 'activity') onActivity(data);
    else if (type === 'read') onRead(data);
}

function onActivity(data) {
    if (data.op === 'delete') {
        removeItem(data.position);
    } else if (data.op === 'update') {
        const li = view.items.get(data.position);
        if (li) setTime(li, data.created_at);
    } else if (data.op === 'insert' && inFeed(view.feed, data.topic)) {
        const top = newestPosition();
        if (view.nextBefore !== null && data.position < view.nextBefore) return;  // a replay: scroll brings it
        const fresh = place({ ...data, is_read: false });
        if (fresh && (top === null || data.position > top)) {
            view.items.get(data.position).classList.add('fresh');
            setNewCount(newCount + 1);
        }
        showListEnd();
    } else {
        return;
    }
    refreshBadgeSoon();
}

function onRead(data) {
    if (data.op === 'read' || data.op === 'unread') {
        for (const position of data.positions || []) {
            const li = view.items.get(position);
            if (li) setRead(li, data.op === 'read');
        }
    } else if (data.op === 'read_all') {
        for (const [position, li] of view.items)
            if (position <= data.up_to && inFeed(data.feed, li.dataset.topic)) setRead(li, true);
    }
    refreshBadgeSoon();
}

// ---- Actions ---------------------------------------------------------------------------------

ui.list.addEventListener('click', async (event) => {
    const toggle = event.target.closest('[data-testid="toggle-read"]');
    if (!toggle) return;
    const li = toggle.closest('[data-testid="item"]');
    const read = li.dataset.read !== 'true';
    setRead(li, read);  // at once; the read event brings it to the other tabs
    try {
        const ids = [Number(li.dataset.activityId)];
        await (read ? api.markRead(ids) : api.markUnread(ids));
    } catch (error) {
        setRead(li, !read);
        showError(error);
    }
    refreshBadgeSoon();
});

ui.markAllRead.addEventListener('click', async () => {
    const upTo = newestPosition();
    if (upTo === null) return;
    try {
        await api.markAllRead({ feed: view.feed, upTo });
        for (const [position, li] of view.items) if (position <= upTo) setRead(li, true);
    } catch (error) {
        showError(error);
    }
    refreshBadgeSoon();
});

function showFeed(feed) {
    view.feed = feed;
    for (const [name, button] of Object.entries(ui.feedButtons))
        button.setAttribute('aria-pressed', String(name === feed));
    const hash = new URLSearchParams(location.hash.slice(1));
    hash.set('feed', feed);
    history.replaceState(null, '', `#${hash}`);  // a reload keeps the feed; no hashchange fires
}

for (const [feed, button] of Object.entries(ui.feedButtons)) {
    button.addEventListener('click', () => {
        if (feed === view.feed) return;
        showFeed(feed);
        reload();
    });
}

ui.toast.addEventListener('click', () => {
    window.scrollTo(0, 0);
    setNewCount(0);
});
window.addEventListener('scroll', () => { if (window.scrollY === 0 && newCount) setNewCount(0); }, { passive: true });

// ---- MPs -------------------------------------------------------------------------------------

function setFollowed(li, followed) {
    const button = li.querySelector('[data-testid="follow-toggle"]');
    button.setAttribute('aria-pressed', String(followed));
}

function renderMps() {
    const rows = [...names.mps.values()].map((mp) => {
        const li = element('li');
        li.dataset.testid = 'mp';
        li.dataset.topic = `mp_id:${mp.id}`;
        const who = element('span', 'who');
        who.append(element('span', 'name', mp.name), ' ', element('span', 'party', mp.party));
        const button = element('button', 'follow');
        button.type = 'button';
        button.dataset.testid = 'follow-toggle';
        button.setAttribute('aria-label', `Follow ${mp.name}`);
        button.textContent = 'Follow';  // pressed: followed (the style shows it)
        li.dataset.party = mp.party;
        li.append(who, button);
        setFollowed(li, follows.has(li.dataset.topic));
        return li;
    });
    ui.mps.replaceChildren(...rows);
}

ui.mps.addEventListener('click', async (event) => {
    const button = event.target.closest('[data-testid="follow-toggle"]');
    if (!button || button.getAttribute('aria-busy') === 'true') return;
    const li = button.closest('[data-testid="mp"]');
    const topic = li.dataset.topic;
    const follow = !follows.has(topic);
    button.setAttribute('aria-busy', 'true');
    try {
        await (follow ? api.follow(topic) : api.unfollow(topic));
        if (follow) follows.add(topic); else follows.delete(topic);
        setFollowed(li, follow);
        if (view.feed === 'following') reload();
    } catch (error) {
        showError(error);
    } finally {
        button.removeAttribute('aria-busy');
    }
});

ui.mpFilter.addEventListener('input', () => {
    const words = ui.mpFilter.value.trim().toLowerCase();
    for (const li of ui.mps.children) li.hidden = words !== '' && !li.textContent.toLowerCase().includes(words);
});

// ---- Start -----------------------------------------------------------------------------------

function tokenSubject(jwt) {
    try {
        const base64 = jwt.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
        const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
        return JSON.parse(new TextDecoder().decode(bytes)).sub;
    } catch {
        return undefined;
    }
}

async function loadNames() {
    try {
        const response = await fetch('parliament.json');
        if (!response.ok) throw new Error(`GET /parliament.json: HTTP ${response.status}`);
        const { mps, bills } = await response.json();
        for (const mp of mps || []) names.mps.set(mp.id, mp);
        for (const bill of bills || []) names.bills.set(bill.id, bill);
    } catch (error) {
        showError(error);  // the feed still shows, with ids for names
    }
}

async function loadFollows() {
    try {
        for (const topic of (await api.follows()).topics) follows.add(topic);
    } catch (error) {
        showError(error);
    }
}

let pollTimer = null;
let everLive = false;

function onState(state) {
    ui.state.textContent = state;
    ui.state.dataset.state = state;
    if (state === 'polling' && pollTimer === null) {
        const poll = () => { refreshTop(); refreshBadgeSoon(); };
        pollTimer = setInterval(poll, pollIntervalMs);
        poll();
    } else if (state !== 'polling' && pollTimer !== null) {
        clearInterval(pollTimer);
        pollTimer = null;
    }
    if (state === 'live') {
        if (everLive) { refreshTop(); refreshBadgeSoon(); }  // back: catch up with what changed meanwhile
        everLive = true;
    }
}

async function start() {
    showFeed(view.feed);
    if (!token) {
        view.loading = false;
        onState('closed');
        ui.end.textContent = 'This page needs a token in its address: /#token=<jwt> (demo/run.sh prints one).';
        return;
    }
    ui.user.textContent = tokenSubject(token) || '?';
    // The client's own unread count only works for feed 'all' (see its README): the badge here is the
    // shown feed's, from unread_count.
    const client = createFeedClient({
        token,
        feed: 'all',
        pollIntervalMs,
        onReset: () => reload(),
        onError: showError,
    });
    client.subscribe(handleEvent);  // queued until the first page is in
    client.state.subscribe(onState);
    await Promise.all([loadNames(), loadFollows()]);
    renderMps();
    await reload();
    new IntersectionObserver((entries) => {
        if (entries.some((entry) => entry.isIntersecting)) loadMore();
    }, { rootMargin: `0px 0px ${NEAR_END_PX}px 0px` }).observe(ui.end);
    setInterval(() => { for (const li of ui.list.children) setTime(li, li.querySelector('time').dateTime); }, 30000);
}

window.addEventListener('hashchange', () => location.reload());  // another token or feed: start over
start();
