#!/usr/bin/env python3
"""The HTTP feed API of pgfeed-notifier (/v1/feed, /v1/unread_count, /v1/read, /v1/unread,
/v1/read_all, /v1/follows, /v1/follow, /v1/unfollow) and its static files, against real servers:
each scenario has its own feed database, redis-server and notifier. Answers are checked against
pgfeed's SQL functions called directly. Every wait is on a condition with a deadline.

Scenarios:
  calls            every call against SQL: all pages of 'all' and 'following' (limit 7) equal
                   pgfeed.page with each item's payload; unread_only; unread_count with and without
                   `after` equal unread_count and count_since; read, unread and read_all change
                   what SQL sees and return how many changed; a read through the API reaches the
                   user's stream as a read event; follows, follow and unfollow.
  users_apart      I6: the user is the token's sub, never the request's: bob's marks leave alice's
                   state alone, a body naming a user is 400; a token granting mp_id:1 may page
                   mp_id:1 and 'following', not 'all' or mp_id:2 (403), and may not follow mp_id:2;
                   no token or a forged one is 401.
  grant_bounds     a token granting mp_id:1 for a user who follows mp_id:1, mp_id:2 and mp_id:10
                   through SQL: 'following' pages, counts, read_all and /v1/follows cover mp_id:1
                   only; marking ids outside the grant answers as for a missing id and changes
                   nothing; unfollow outside the grant is 403; mp_id:1* covers mp_id:10 too.
  bad_input        each malformed call gets its 4xx with a JSON error (400, 405 with Allow, 413,
                   415) and pgfeed's own message for what only it checks; the workers stay up,
                   nothing changed in the database, and the refusals are counted in /metrics.
  postgres_down    PostgreSQL stopped: 503 with Retry-After; started again: 200 once the sessions
                   reconnected, with no restart of the notifier.
  redis_down       Redis stopped: an open stream ends (retry: hint, counted as redis_lost) once
                   Redis stays away, /v1/stream is 503 and /readyz says poll, while the feed API
                   still serves and sees new activities (the polling fallback); Redis back: a new
                   stream resumes from the last id and replays what was committed meanwhile.
  abandoned        300 calls whose clients hang up before the answer, among normal ones: the
                   workers stay the same processes and keep answering correctly.
  static_files     --http.static_dir: / is index.html, files with their Content-Type, HEAD;
                   traversal (raw ../ and %2e%2e), hidden files, a symlink out of the directory
                   and subdirectory listings are 404; POST is 405; without the flag / is 404.
  user_calls       with the activities table locked, one user's calls beyond limits.api_calls_per_user
                   get 429 with Retry-After at once while another user is served; unlocked, the
                   admitted calls answer 200.
  unread_replies   clients that never read pages of about 3 MB: their user gets 429 once its unread
                   replies pass limits.api_unsent_bytes_per_user while others are served, then
                   everybody 503 past limits.api_unsent_bytes; served again once they hang up.
  cors             a preflight of POST /v1/read from an allowed origin allows POST and
                   Content-Type; GET /v1/feed answers with Access-Control-Allow-Origin.
"""
import json
import os
import select
import socket
import sys
import time

from _servers import (RUN, STREAM, FeedDatabase, Gateway, RedisServer, SseStream, TestFailure, choose_scenarios,
                      connect, http_request, mint_token, open_socket, pg_ctl, query, request_bytes,
                      run_scenarios, wait_until)
from _harness import start_watchdog

LABEL = 'feed_api'
SETUPS = []  # of the scenario running: their gateways' logs are shown when it fails


def expect(condition, message):
    if not condition:
        raise TestFailure(message)


class Setup:
    """A feed database with activities of topics mp_id:1..3, a redis-server and a gateway."""

    def __init__(self, name, args=(), workers=2):
        SETUPS.append(self)
        self.name = name
        self.db = FeedDatabase('api_%s' % name)
        self.db.__enter__()
        self.redis = None
        self.gateway = None
        try:
            self.redis = RedisServer('%s-redis' % name).start()
            self.gateway = Gateway('%s-gateway' % name, self.db.name, self.redis, workers=workers,
                                   args=args).start()
        except BaseException:
            self.close()
            raise

    @property
    def port(self):
        return self.gateway.port

    def sql(self, statement, params=None):
        return query(self.db.name, statement, params)

    def insert(self, n, mp_id, kind='vote'):
        rows = self.sql('INSERT INTO activities (mp_id, kind) SELECT %s, %s FROM generate_series(1, %s) RETURNING id',
                        (mp_id, kind, n))
        self.sql('CALL pgfeed.flush()')  # numbered: in the feed
        return [r[0] for r in rows]

    def call(self, path, token, body=None, method=None, headers=()):
        """One API call with the token as a Bearer header; JSON bodies are sent as such."""
        hdrs = list(headers)
        if token is not None:
            hdrs.append(('Authorization', 'Bearer ' + token))
        data = None
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            if not any(name.lower() == 'content-type' for name, _ in hdrs):
                hdrs.append(('Content-Type', 'application/json'))
        return http_request(self.port, path, method or ('POST' if body is not None else 'GET'), hdrs, body=data)

    def ok(self, path, token, body=None):
        r = self.call(path, token, body)
        expect(r.status == 200, '%s: %s %s' % (path, r.status, r.text()))
        return r.json()

    def close(self):
        if self.gateway:
            self.gateway.stop()
        if self.redis:
            self.redis.stop()
        self.db.drop()


def sql_page(setup, user, feed, limit, before, unread_only=False):
    rows = setup.sql('SELECT p.position, p.activity_id, p.topic, p.is_read, a.kind FROM pgfeed.page(%s, %s, %s, %s, %s) p '
                     'JOIN activities a ON a.id = p.activity_id ORDER BY p.position DESC',
                     (user, feed, limit, before, unread_only))
    return [{'position': r[0], 'activity_id': r[1], 'topic': r[2], 'is_read': r[3], 'payload': {'kind': r[4]}}
            for r in rows]


def api_items(page):
    return [{k: item[k] for k in ('position', 'activity_id', 'topic', 'is_read', 'payload')} for item in page['items']]


def all_pages(setup, token, user, feed, limit, unread_only=False):
    """Pages through `feed` by next_before, checking each page against SQL; the items."""
    items, before, pages = [], None, 0
    while True:
        path = '/v1/feed?feed=%s&limit=%d&unread_only=%s' % (feed, limit, 'true' if unread_only else 'false')
        if before is not None:
            path += '&before=%d' % before
        page = setup.ok(path, token)
        expect(page['feed'] == feed, 'feed %r echoed as %r' % (feed, page['feed']))
        want = sql_page(setup, user, feed, limit, before, unread_only)
        expect(api_items(page) == want, '%s: page %s differs from SQL:\n%s\n%s' % (feed, before, api_items(page), want))
        expect(all(i['source'] == 'public.activities' and i['created_at'] for i in page['items']),
               'source or created_at missing: %s' % page['items'][:1])
        items += page['items']
        pages += 1
        expect(page['next_before'] == (page['items'][-1]['position'] if len(page['items']) == limit else None),
               'next_before %s after a page of %d' % (page['next_before'], len(page['items'])))
        if page['next_before'] is None:
            return items, pages
        before = page['next_before']


def unread(setup, user, feed):
    return setup.sql('SELECT pgfeed.unread_count(%s, %s)', (user, feed))[0][0]


def scenario_calls(_seed):
    s = Setup('calls')
    try:
        alice = mint_token('alice')
        for mp_id in (1, 2, 3):
            s.insert(9, mp_id, kind='kind-%d' % mp_id)
        s.sql("SELECT pgfeed.follow('alice', 'mp_id:2')")
        items, pages = all_pages(s, alice, 'alice', 'all', 7)
        expect(len(items) == 27 and pages == 4, '27 items in 4 pages of 7, got %d in %d' % (len(items), pages))
        following, _ = all_pages(s, alice, 'alice', 'following', 7)
        expect({i['topic'] for i in following} == {'mp_id:2'} and len(following) == 9, 'following: %s' % following)

        ids = [i['activity_id'] for i in items]
        changed = s.ok('/v1/read', alice, {'ids': ids[:5] + ids[:2]})['changed']
        expect(changed == 5, 'read of 5 ids (2 repeated) changed %s' % changed)
        expect(s.sql('SELECT count(*) FROM unnest(%s::bigint[]) i WHERE pgfeed.is_read(%s, i)', (ids[:5], 'alice'))[0][0]
               == 5, 'SQL does not see the 5 marks')
        expect(s.ok('/v1/unread', alice, {'ids': ids[:1]})['changed'] == 1, 'unread of 1 id')
        unread_items, _ = all_pages(s, alice, 'alice', 'all', 7, unread_only=True)
        expect(len(unread_items) == 23, '23 unread items, got %d' % len(unread_items))

        top = items[0]['position']
        for feed in ('all', 'following', 'mp_id:3'):
            got = s.ok('/v1/unread_count?feed=' + feed, alice)
            expect(got == {'feed': feed, 'unread': unread(s, 'alice', feed)}, '%s: %s' % (feed, got))
        since = s.ok('/v1/unread_count?feed=all&after=%d' % (top - 4), alice)
        expect(since['new'] == 4 and since['unread'] == unread(s, 'alice', 'all'), 'after: %s' % since)

        changed = s.ok('/v1/read_all', alice, {'feed': 'following', 'up_to': top})['changed']
        expect(changed == 9 and unread(s, 'alice', 'following') == 0, 'read_all following changed %s' % changed)
        changed = s.ok('/v1/read_all', alice, {})['changed']
        expect(unread(s, 'alice', 'all') == 0 and changed == 23 - 9 + 1 - 1,
               'read_all changed %s, %s left' % (changed, unread(s, 'alice', 'all')))

        # The marks went through pgfeed, so they reach alice's stream like any other.
        def read_events():
            return [json.loads(f['data']) for _i, f in s.redis.client().xrange(STREAM)
                    if f.get('kind') == 'read' and f.get('user') == 'alice']
        events = wait_until(lambda: len(read_events()) >= 4 and read_events(), "alice's 4 read events in the stream")
        expect([e['op'] for e in events[:4]] == ['read', 'unread', 'read_all', 'read_all'], 'ops %s' % events)

        expect(s.ok('/v1/follows', alice) == {'topics': ['mp_id:2']}, 'follows')
        expect(s.ok('/v1/follow', alice, {'topic': 'mp_id:1'}) == {'changed': True}, 'follow')
        expect(s.ok('/v1/follow', alice, {'topic': 'mp_id:1'}) == {'changed': False}, 'follow again')
        expect(s.ok('/v1/unfollow', alice, {'topic': 'mp_id:2'}) == {'changed': True}, 'unfollow')
        expect(s.ok('/v1/follows', alice) == {'topics': ['mp_id:1']}, 'follows after')
        return '27 items in 4 pages equal pgfeed.page; marks, counts and follows agree with SQL; read events streamed'
    finally:
        s.close()


def scenario_users_apart(_seed):
    s = Setup('users_apart')
    try:
        ids = s.insert(4, 1) + s.insert(2, 2)
        alice, bob = mint_token('alice'), mint_token('bob')
        expect(s.ok('/v1/read', bob, {'ids': ids})['changed'] == 6, "bob's marks")
        expect(unread(s, 'alice', 'all') == 6 and unread(s, 'bob', 'all') == 0, 'bob read for alice')
        r = s.call('/v1/read', bob, {'ids': ids, 'user': 'alice'})
        expect(r.status == 400 and 'user' in r.json()['error'], 'a body naming a user: %s %s' % (r.status, r.text()))
        r = s.call('/v1/feed?user=alice&user_key=alice', bob)
        expect(r.status == 200 and all(i['is_read'] for i in r.json()['items']), "?user= showed alice's feed to bob")

        narrow = mint_token('carol', topics=['mp_id:1'])
        statuses = {feed: s.call('/v1/feed?feed=' + feed, narrow).status for feed in ('mp_id:1', 'following', 'all',
                                                                                      'mp_id:2')}
        expect(statuses == {'mp_id:1': 200, 'following': 200, 'all': 403, 'mp_id:2': 403}, 'feeds: %s' % statuses)
        expect(s.call('/v1/unread_count?feed=all', narrow).status == 403, 'unread_count of all')
        expect(s.call('/v1/read_all', narrow, {}).status == 403, 'read_all of all')
        expect(s.call('/v1/follow', narrow, {'topic': 'mp_id:2'}).status == 403, 'follow outside the grant')
        expect(s.call('/v1/follow', narrow, {'topic': 'mp_id:1'}).status == 200, 'follow inside the grant')

        for token, what in ((None, 'no token'), (mint_token('alice', secret='another'), 'forged'),
                            (mint_token('alice', expires_in=-3600), 'expired')):
            r = s.call('/v1/read', token, {'ids': ids})
            expect(r.status == 401 and r.header('www-authenticate') == 'Bearer', '%s: %s' % (what, r.status))
        expect(unread(s, 'alice', 'all') == 6, "alice's state changed")
        return "bob's marks stayed his; a body or query naming a user changes nothing; topic grants hold; 401s"
    finally:
        s.close()


def scenario_grant_bounds(_seed):
    s = Setup('grant_bounds')
    try:
        inside, outside, near = s.insert(5, 1), s.insert(5, 2), s.insert(3, 10)
        s.sql("SELECT pgfeed.follow('carol', t) FROM unnest(ARRAY['mp_id:1', 'mp_id:2', 'mp_id:10']) t")
        narrow = mint_token('carol', topics=['mp_id:1'])

        items, pages = all_pages_bounded(s, narrow, 'following', 2)
        expect([i['activity_id'] for i in items] == sorted(inside, reverse=True) and pages == 3,
               "'following' beyond the grant: %s" % [(i['activity_id'], i['topic']) for i in items])
        counts = s.ok('/v1/unread_count?feed=following&after=0', narrow)
        expect(counts['unread'] == 5 and counts['new'] == 5, 'counts beyond the grant: %s' % counts)
        expect(s.ok('/v1/follows', narrow)['topics'] == ['mp_id:1'], 'follows beyond the grant')

        # An id outside the grant is answered exactly as a missing one, and stays as it was.
        s.sql("SELECT pgfeed.mark_read('carol', %s)", ([outside[1]],))
        answers = {what: s.call(path, narrow, {'ids': ids}).text()
                   for what, path, ids in (('outside', '/v1/read', [outside[0]]), ('missing', '/v1/read', [10 ** 9]),
                                           ('outside_unread', '/v1/unread', [outside[1]]),
                                           ('missing_unread', '/v1/unread', [10 ** 9]))}
        expect(len(set(answers.values())) == 1, 'outside and missing ids answered apart: %s' % answers)
        states = s.sql("SELECT pgfeed.is_read('carol', %s), pgfeed.is_read('carol', %s)", (outside[0], outside[1]))[0]
        expect(states == (False, True), 'marks outside the grant changed state: %s' % (states,))
        expect(s.ok('/v1/read', narrow, {'ids': [inside[0], outside[2]]})['changed'] == 1, 'a mixed mark')

        expect(s.ok('/v1/read_all', narrow, {'feed': 'following'})['changed'] == 4, 'read_all beyond the grant')
        left = [unread(s, 'carol', 'mp_id:%d' % m) for m in (1, 2, 10)]
        expect(left == [0, 4, 3], 'read_all of following marked outside the grant: %s' % left)
        r = s.call('/v1/unfollow', narrow, {'topic': 'mp_id:2'})
        expect(r.status == 403, 'unfollow outside the grant: %s' % r.status)
        followed = [t for (t,) in s.sql("SELECT pgfeed.following('carol')")]
        expect(followed == ['mp_id:1', 'mp_id:10', 'mp_id:2'], 'follows after a refused unfollow: %s' % followed)

        expect(s.ok('/v1/follows', mint_token('carol', topics=['mp_id:1*']))['topics'] == ['mp_id:1', 'mp_id:10'],
               'a pattern grant')
        wide = s.ok('/v1/unread_count?feed=following', mint_token('carol'))['unread']
        expect(wide == 7, "'*' is no bound: %s unread of 7" % wide)
        return 'following, counts, read_all, follows, marks and unfollow stay within the token\'s topics'
    finally:
        s.close()


def all_pages_bounded(setup, token, feed, limit):
    """Pages through `feed` by next_before; the items and the number of pages."""
    items, before, pages = [], None, 0
    while True:
        page = setup.ok('/v1/feed?feed=%s&limit=%d%s' % (feed, limit, '' if before is None else '&before=%d' % before),
                        token)
        items += page['items']
        pages += 1
        if page['next_before'] is None:
            return items, pages
        before = page['next_before']


BAD_CALLS = [
    # (method, path, body, content type, status, a word of the error)
    ('GET', '/v1/feed?limit=0', None, None, 400, 'limit'),
    ('GET', '/v1/feed?limit=1001', None, None, 400, 'limit'),
    ('GET', '/v1/feed?limit=ten', None, None, 400, 'limit'),
    ('GET', '/v1/feed?before=-1', None, None, 400, 'before'),
    ('GET', '/v1/feed?unread_only=yes', None, None, 400, 'unread_only'),
    ('GET', '/v1/feed?limit=5&limit=6', None, None, 400, 'more than once'),
    ('GET', '/v1/feed?feed=', None, None, 400, 'feed'),
    ('GET', '/v1/feed?feed=everything', None, None, 400, 'unknown feed'),  # pgfeed's own check
    ('GET', '/v1/feed?feed=mp_id%00', None, None, 400, 'NUL'),
    ('GET', '/v1/unread_count?after=x', None, None, 400, 'after'),
    ('GET', '/v1/feed', b'{"a": 1}', 'application/json', 400, 'no body'),
    ('POST', '/v1/read', b'{"ids": []}', 'application/json', 400, 'ids'),
    ('POST', '/v1/read', json.dumps({'ids': list(range(1001))}).encode(), 'application/json', 400, 'ids'),
    ('POST', '/v1/read', b'{"ids": ["1"]}', 'application/json', 400, 'whole number'),
    ('POST', '/v1/read', b'{"ids": [1.5]}', 'application/json', 400, 'whole number'),
    ('POST', '/v1/read', b'{"ids": [9007199254740994]}', 'application/json', 400, 'whole number'),
    ('POST', '/v1/read', b'{"id": 1}', 'application/json', 400, 'unknown key'),
    ('POST', '/v1/read', b'{}', 'application/json', 400, 'ids'),
    ('POST', '/v1/read', b'[1, 2]', 'application/json', 400, 'object'),
    ('POST', '/v1/read', b'{"ids": [1]', 'application/json', 400, 'object'),
    ('POST', '/v1/read', b'{"ids": [1], "ids": [2]}', 'application/json', 400, 'more than once'),
    ('POST', '/v1/read_all', b'{"up_to": -1}', 'application/json', 400, 'up_to'),
    ('POST', '/v1/read_all', b'{"feed": 7}', 'application/json', 400, 'feed'),
    ('POST', '/v1/follow', b'{"topic": "mp_id:*"}', 'application/json', 400, 'topic'),
    ('POST', '/v1/follow', b'{"topic": "mp\\u0000"}', 'application/json', 400, 'NUL'),
    ('POST', '/v1/follow', b'{"topic": "mp_id"}', 'application/json', 400, 'topic'),  # pgfeed's own check
    ('POST', '/v1/read', b'{"ids": [1]}', None, 415, 'JSON'),
    ('POST', '/v1/read', b'ids=1', 'application/x-www-form-urlencoded', 415, 'JSON'),
    ('POST', '/v1/read', b'{"ids": [1]}', 'text/plain', 415, 'JSON'),
    ('POST', '/v1/read', b'{"ids": [' + b'1,' * 40000 + b'1]}', 'application/json', 413, None),
    ('GET', '/v1/read', None, None, 405, 'POST'),
    ('POST', '/v1/feed', b'{}', 'application/json', 405, 'GET'),
    ('DELETE', '/v1/follow', None, None, 405, 'POST'),
    ('GET', '/v1/feeds', None, None, 404, 'no such endpoint'),
]


def scenario_bad_input(_seed):
    s = Setup('bad_input')
    try:
        ids = s.insert(3, 1)
        alice = mint_token('alice')
        pids = s.gateway.worker_pids()
        before = s.sql("SELECT pgfeed.unread_count('alice', 'all'), array(SELECT pgfeed.following('alice'))")
        seen = []
        for method, path, body, content_type, status, word in BAD_CALLS:
            headers = [('Content-Type', content_type)] if content_type else []
            r = http_request(s.port, path, method, headers + [('Authorization', 'Bearer ' + alice)], body=body)
            expect(r.status == status, '%s %s %r: %s, expected %s: %s' % (method, path, (body or b'')[:40], r.status,
                                                                         status, r.text()[:200]))
            if word is not None:
                error = r.json().get('error', '')
                expect(word.lower() in error.lower(), '%s %s: error %r lacks %r' % (method, path, error, word))
            if status == 405:
                expect(r.header('allow') in ('GET, OPTIONS', 'POST, OPTIONS'), 'Allow: %s' % r.header('allow'))
            seen.append(status)
        expect(s.gateway.worker_pids() == pids, 'a worker was replaced')
        after = s.sql("SELECT pgfeed.unread_count('alice', 'all'), array(SELECT pgfeed.following('alice'))")
        expect(before == after, 'refused calls changed state: %s -> %s' % (before, after))
        expect(s.ok('/v1/read', alice, {'ids': ids})['changed'] == 3, 'a good call after the bad ones')

        def rejected(reason):
            metrics = http_request(s.port, '/metrics').text()
            return sum(float(line.rsplit(' ', 1)[1]) for line in metrics.splitlines()
                       if line.startswith('pgfeed_requests_rejected_total{') and 'reason="%s"' % reason in line)
        counted = {reason: rejected(reason) for reason in ('bad_request', 'unsupported_media_type',
                                                           'method_not_allowed', 'not_found')}
        expect(counted == {'bad_request': seen.count(400), 'unsupported_media_type': seen.count(415),
                           'method_not_allowed': seen.count(405), 'not_found': seen.count(404)},
               'metrics counted %s' % counted)
        return '%d malformed calls refused (%s); nothing changed; counted in /metrics' % (
            len(BAD_CALLS), ', '.join('%d x %d' % (seen.count(c), c) for c in sorted(set(seen))))
    finally:
        s.close()


def scenario_postgres_down(_seed):
    s = Setup('postgres_down')
    try:
        s.insert(2, 1)
        alice = mint_token('alice')
        expect(s.call('/v1/unread_count', alice).status == 200, 'before the stop')
        pg_ctl('stop')
        try:
            r = wait_until(lambda: (lambda r: r if r.status == 503 else None)(s.call('/v1/unread_count', alice)),
                           '503 while PostgreSQL is down', 20)
            expect(r.header('retry-after') == '1' and 'error' in r.json(), '503 without Retry-After: %s' % r.text())
            down_calls = [s.call(path, alice, body).status for path, body in
                          (('/v1/feed', None), ('/v1/read', {'ids': [1]}), ('/v1/follows', None))]
            expect(down_calls == [503, 503, 503], 'other calls while down: %s' % down_calls)
        finally:
            pg_ctl('start')
        started = time.monotonic()
        got = wait_until(lambda: (lambda r: r.json() if r.status == 200 else None)(s.call('/v1/unread_count', alice)),
                         'the feed API back after PostgreSQL started', 30)
        expect(got['unread'] == 2, 'after the restart: %s' % got)
        return '503 + Retry-After while down; 200 again %.2f s after the start' % (time.monotonic() - started)
    finally:
        s.close()


def scenario_redis_down(_seed):
    s = Setup('redis_down')
    try:
        alice = mint_token('alice')
        stream = SseStream(s.port, alice)
        stream.wait_connected()
        last_id = stream.connected_event().id
        stopped = time.monotonic()
        s.redis.stop()
        stream.wait_closed()
        ended_after = time.monotonic() - stopped
        items = stream.items()
        expect(items and items[-1][0] == 'retry', 'the stream did not end with a retry: hint: %s' % items[-3:])
        wait_until(lambda: http_request(s.port, '/readyz').status == 503, '/readyz to say poll')
        refused = http_request(s.port, '/v1/stream', headers=[('Authorization', 'Bearer ' + alice)])
        expect(refused.status == 503, '/v1/stream with redis down: %s' % refused.status)
        ids = s.insert(3, 2)
        page = s.ok('/v1/feed?limit=3', alice)
        expect([i['activity_id'] for i in page['items']] == ids[::-1], 'new items while redis is down: %s' % page)
        expect(s.ok('/v1/unread_count', alice)['unread'] == 3, 'badge while redis is down')
        metrics = http_request(s.port, '/metrics').text()
        expect(any(line.startswith('pgfeed_connections_closed_total{') and 'reason="redis_lost"' in line and
                   not line.endswith(' 0') for line in metrics.splitlines()), 'redis_lost not counted')

        s.redis.start()
        s.gateway.wait_streams_ready()
        resumed = SseStream(s.port, alice, last_event_id=last_id)
        resumed.wait_event(lambda e: e.event == 'activity' and json.loads(e.data)['activity_id'] == ids[-1],
                           'the activities committed while redis was down')
        got = [json.loads(e.data)['activity_id'] for e in resumed.events(['activity'])]
        resumed.close()
        expect(got == ids, 'replayed %s, expected %s' % (got, ids))
        return ('the open stream ended %.1f s after redis stopped; the feed API served the 3 new items; '
                'back: they replayed once, in order' % ended_after)
    finally:
        s.close()


def scenario_abandoned(_seed):
    # A call counts against its user until its query ends, abandoned or not (else hanging up would
    # dodge api_calls_per_user): alice's checks among 300 abandoned calls need a higher limit.
    s = Setup('abandoned', args=['--api.sessions=1', '--limits.api_calls_per_user=1000'])
    try:
        ids = s.insert(50, 1)
        alice = mint_token('alice')
        pids = s.gateway.worker_pids()
        calls = [('/v1/feed?limit=50', None), ('/v1/read', {'ids': ids[:10]}), ('/v1/unread_count', None)]
        for n in range(300):
            path, body = calls[n % len(calls)]
            data = json.dumps(body).encode() if body else None
            headers = [('Authorization', 'Bearer ' + alice)] + ([('Content-Type', 'application/json')] if data else [])
            sock = open_socket(s.port)
            sock.sendall(request_bytes(s.port, path, 'POST' if data else 'GET', headers, body=data))
            sock.close()  # before the answer
            if n % 50 == 0:
                expect(s.ok('/v1/unread_count', alice)['unread'] in (40, 50), 'a call among abandoned ones')
        s.gateway.wait_streams_ready()
        expect(s.gateway.worker_pids() == pids, 'a worker died: %s -> %s' % (pids, s.gateway.worker_pids()))
        page = s.ok('/v1/feed?limit=50', alice)
        expect(len(page['items']) == 50 and s.ok('/v1/unread_count', alice)['unread'] == 40, 'after: %s' % page)
        return '300 calls abandoned by their clients; the same workers answer correctly'
    finally:
        s.close()


def first_status(raw):
    line = raw.split(b'\r\n', 1)[0].split()
    return int(line[1]) if len(line) >= 2 and line[1].isdigit() else None


def _answered(sock, got):
    """Reads what `sock` has without waiting; True once the server closed it (an answer in full)."""
    sock.settimeout(0)
    while True:
        try:
            chunk = sock.recv(65536)
        except BlockingIOError:
            return False
        if not chunk:
            return True
        got += chunk


def scenario_user_calls(_seed):
    s = Setup('user_calls', args=['--limits.api_calls_per_user=4', '--api.sessions=6'], workers=1)
    socks, lock = [], None
    try:
        s.insert(20, 1)
        alice, bob = mint_token('alice'), mint_token('bob')
        lock = connect(s.db.name, 'lock', autocommit=False)
        lock.cursor().execute('LOCK TABLE activities IN ACCESS EXCLUSIVE MODE')  # every page waits for it
        for _ in range(10):
            sock = open_socket(s.port, timeout=20)
            sock.sendall(request_bytes(s.port, '/v1/feed?limit=20', headers=[('Authorization', 'Bearer ' + alice),
                                                                             ('Connection', 'close')]))
            socks.append((sock, bytearray()))
        wait_until(lambda: sum(_answered(sock, got) for sock, got in socks) >= 6,
                   '6 of 10 calls of one user answered at once with api_calls_per_user=4 (the others wait for the '
                   'lock)', 10, 0.02)
        answered = [bytes(got) for sock, got in socks if got]
        statuses = sorted(first_status(raw) for raw in answered)
        expect(statuses == [429] * 6, 'the calls beyond the limit: %s' % statuses)
        expect(all(b'\r\nRetry-After: ' in raw for raw in answered), 'a 429 without Retry-After')
        t0 = time.monotonic()
        other = s.call('/v1/follows', bob)
        expect(other.status == 200, 'another user while alice is at her limit: %s' % other.status)
        took = time.monotonic() - t0
        lock.rollback()
        waiting = [(sock, got) for sock, got in socks if not got]
        wait_until(lambda: all(_answered(sock, got) for sock, got in waiting), 'the 4 admitted calls', 10, 0.02)
        statuses = [first_status(bytes(got)) for sock, got in waiting]
        expect(statuses == [200] * 4, 'the admitted calls after the lock: %s' % statuses)
        expect(s.call('/v1/feed?limit=20', alice).status == 200, 'alice once her calls are done')
        refused = s.gateway.metrics().get('pgfeed_requests_rejected_total', status='429', reason='api_user_calls')
        expect(refused == 6, '%s calls counted as api_user_calls, expected 6' % refused)
        return '6 of 10 refused at once (429, Retry-After); another user answered in %.2f s; 4 answered after' % took
    finally:
        if lock:
            lock.close()
        for sock, _ in socks:
            sock.close()
        s.close()


def scenario_unread_replies(_seed):
    per_user, total = 4 << 20, 12 << 20
    s = Setup('unread_replies', args=['--limits.api_unsent_bytes_per_user=%d' % per_user,
                                      '--limits.api_unsent_bytes=%d' % total], workers=1)
    held = []
    try:
        # Pages of about 3 MB (a payload must stay under about 4 KB).
        s.sql("INSERT INTO activities (mp_id, kind) SELECT 1, repeat('x', 3000) FROM generate_series(1, 1000)")
        s.sql('CALL pgfeed.flush()')  # numbered: in the feed
        bob = mint_token('bob')

        def hold_until_refused(user, stop):
            """Pages nobody reads, one connection at a time, until a call of `user` is refused or
            stop() holds; the refusal's status."""
            token = mint_token(user)
            for _ in range(12):
                sock = open_socket(s.port, rcvbuf=4096, timeout=20)
                sock.sendall(request_bytes(s.port, '/v1/feed?limit=1000',
                                           headers=[('Authorization', 'Bearer ' + token)]))
                held.append(sock)
                expect(select.select([sock], [], [], 10)[0], 'no answer to a page of 1000 in 10 s')
                status = s.call('/v1/unread_count', token).status
                if status != 200 or stop():
                    return status
            raise TestFailure('%s held 12 unread pages of about 3 MB and was never refused' % user)
        status = hold_until_refused('alice', lambda: False)
        expect(status == 429, 'alice past api_unsent_bytes_per_user: %s, expected 429' % status)
        alice_held = len(held)
        expect(s.call('/v1/unread_count', bob).status == 200, 'bob while alice holds %d unread pages' % alice_held)
        for user in ('carol', 'dave', 'erin', 'frank'):
            status = hold_until_refused(user, lambda: s.call('/v1/unread_count', bob).status == 503)
            if s.call('/v1/unread_count', bob).status == 503:
                break
            expect(status == 429, '%s: %s' % (user, status))
        bob_status = s.call('/v1/unread_count', bob)
        expect(bob_status.status == 503 and bob_status.header('retry-after'),
               'bob with %d unread pages held: %s, expected 503 with Retry-After' % (len(held), bob_status.status))
        all_held = len(held)
        for sock in held:
            sock.close()
        held.clear()
        wait_until(lambda: s.call('/v1/unread_count', bob).status == 200, 'bob once the readers hung up', 10, 0.05)
        m = s.gateway.metrics()
        counted = (m.get('pgfeed_requests_rejected_total', status='429', reason='api_user_unsent'),
                   m.get('pgfeed_requests_rejected_total', status='503', reason='api_unsent'))
        expect(counted[0] >= 1 and counted[1] >= 1, 'refusals counted as api_user_unsent, api_unsent: %s' % (counted,))
        return 'alice refused after %d unread pages, others served; 503 for all with %d held; served after' % (
            alice_held, all_held)
    finally:
        for sock in held:
            sock.close()
        s.close()


def scenario_static_files(_seed):
    root = RUN.path('static')
    os.makedirs(os.path.join(root, 'assets'), exist_ok=True)
    files = {'index.html': b'<!doctype html><title>t</title>', 'app.js': b'export const a = 1;',
             'assets/style.css': b'body{}', '.secret': b'hidden', 'data.json': b'{}'}
    for name, content in files.items():
        with open(os.path.join(root, name), 'wb') as f:
            f.write(content)
    outside = RUN.path('outside.txt')
    with open(outside, 'wb') as f:
        f.write(b'outside')
    link = os.path.join(root, 'link.txt')
    if not os.path.lexists(link):
        os.symlink(outside, link)
    s = Setup('static_files', args=['--http.static_dir=' + root])
    try:
        served = {}
        for path, name, content_type in (('/', 'index.html', 'text/html; charset=utf-8'),
                                         ('/app.js', 'app.js', 'text/javascript; charset=utf-8'),
                                         ('/assets/style.css', 'assets/style.css', 'text/css; charset=utf-8'),
                                         ('/data.json', 'data.json', 'application/json')):
            r = http_request(s.port, path)
            expect(r.status == 200 and r.body == files[name] and r.header('content-type') == content_type,
                   '%s: %s %s %r' % (path, r.status, r.header('content-type'), r.body[:40]))
            served[path] = r.status
        head = http_request(s.port, '/app.js', 'HEAD')
        expect(head.status == 200 and head.body == b'', 'HEAD: %s %r' % (head.status, head.body))
        for path in ('/../outside.txt', '/assets/../../outside.txt', '/%2e%2e/outside.txt', '/.secret', '/link.txt',
                     '/assets/', '/assets', '/nope.js', '//app.js', '/v1/nope'):
            r = http_request(s.port, path)
            expect(r.status == 404 and b'outside' not in r.body and b'hidden' not in r.body,
                   '%s: %s %r' % (path, r.status, r.body[:60]))
        r = http_request(s.port, '/', 'POST')
        expect(r.status == 405 and r.header('allow') == 'GET, HEAD, OPTIONS', 'POST /: %s' % r.status)
    finally:
        s.close()
    plain = Setup('static_none')
    try:
        expect(http_request(plain.port, '/').status == 404, 'without --http.static_dir, / is not served')
    finally:
        plain.close()
    return 'served %s; traversal, hidden, symlinked-out and directory paths 404; HEAD; 405' % sorted(served)


def scenario_cors(_seed):
    origin = 'http://localhost:3000'
    s = Setup('cors', args=['--http.cors_origins=' + origin])
    try:
        r = http_request(s.port, '/v1/read', 'OPTIONS', [('Origin', origin), ('Access-Control-Request-Method', 'POST'),
                                                          ('Access-Control-Request-Headers', 'content-type')])
        expect(r.status == 204 and r.header('access-control-allow-origin') == origin, 'preflight: %s' % r.status)
        expect(r.header('access-control-allow-methods') == 'POST, OPTIONS', 'methods %s' %
               r.header('access-control-allow-methods'))
        expect('Content-Type' in r.header('access-control-allow-headers'), 'headers %s' %
               r.header('access-control-allow-headers'))
        r = s.call('/v1/feed', mint_token('alice'), headers=[('Origin', origin)])
        expect(r.status == 200 and r.header('access-control-allow-origin') == origin, 'GET with Origin: %s' % r.status)
        r = s.call('/v1/feed', mint_token('alice'), headers=[('Origin', 'https://evil.example')])
        expect(r.header('access-control-allow-origin') is None, 'another origin got ACAO')
        return 'preflight allows POST with Content-Type; ACAO on the feed only for the allowed origin'
    finally:
        s.close()


SCENARIOS = [(name[len('scenario_'):], fn) for name, fn in globals().items() if name.startswith('scenario_')]


def main():
    seed, chosen = choose_scenarios(LABEL, SCENARIOS, sys.argv)
    start_watchdog(120 + 60 * len(chosen), LABEL, cleanup=RUN.finish)
    return run_scenarios(LABEL, SCENARIOS, chosen, seed, SETUPS, lambda setup: [setup.gateway] if setup.gateway else [])


if __name__ == '__main__':
    sys.exit(main())
