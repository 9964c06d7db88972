#!/usr/bin/env python3
"""Bad input from outside: the notifier says what is wrong, keeps running, and loses nothing.

Scenarios:
  bad_configuration  an unknown flag exits 64, a bad value or a missing file 78, each with a message
                     naming what is wrong; --check-config exits 0.
  stream_key_taken   the stream's key holds a string: the bridge logs it, moves nothing (the events
                     wait in PostgreSQL), and once the key is deleted moves every event once.
  damaged_position   the bridge position in Redis is not a position: the bridge logs it and refuses
                     to guess; once the key is deleted it starts where PostgreSQL's record says and
                     moves the waiting events, none twice.
  extension_version  the database's pgfeed is of another release (older, then newer): the bridge and
                     /readyz say so and what to do, /readyz is 503 (poll), no event moves; after the
                     extension is back at a supported release the waiting events move once and
                     /readyz is 200, without a restart.
"""
import json
import subprocess
import sys
import time

from _servers import (NOTIFIER_BIN, RUN, STREAM, FeedDatabase, Gateway, Notifier, RedisServer, TestFailure,
                      http_request, notifier_available, outbox_event_ids, query, read_stream, wait_until)
from _harness import start_watchdog

LABEL = 'bad_input'
POSITION = STREAM + ':bridge'


def expect(condition, message):
    if not condition:
        raise TestFailure(message)


def run_notifier(*args):
    done = subprocess.run([NOTIFIER_BIN] + list(args), capture_output=True, text=True, timeout=30)
    return done.returncode, done.stdout + done.stderr


def scenario_bad_configuration():
    cases = [
        (['--bogus'], 64, 'unknown option'),
        (['--redis.port=abc'], 78, '--redis.port = "abc": expected an integer in 1..65535'),
        (['--bridge.batch_size=0'], 78, 'batch_size'),
        (['--config=/nonexistent/notifier.ini'], 78, '/nonexistent/notifier.ini'),
        (['--check-config', '--redis.port=6380'], 0, 'port = 6380'),
    ]
    for args, status, words in cases:
        got, output = run_notifier(*args)
        expect(got == status and words in output,
               '%s: exit %d, expected %d with %r in:\n%s' % (' '.join(args), got, status, words, output))
    return '%d command lines' % len(cases)


class Setup:
    """A feed database, a redis-server and one notifier, with helpers to insert and to look."""

    def __init__(self, name, gateway=False):
        self.db = FeedDatabase('bad_%s' % name)
        self.db.__enter__()
        self.redis = RedisServer('%s-redis' % name).start()
        self.client = self.redis.client()
        if gateway:
            self.notifier = Gateway('%s-notifier' % name, self.db.name, self.redis, workers=1,
                                    args=['--bridge.takeover_ms=100', '--ready.probe_interval_ms=100'])
        else:
            self.notifier = Notifier('%s-notifier' % name, self.db.name, self.redis, ['--bridge.tick_ms=50'])

    def insert(self, n):
        query(self.db.name, "INSERT INTO activities (mp_id, kind) SELECT g, 'vote' FROM generate_series(1, %s) g", (n,))
        query(self.db.name, 'CALL pgfeed.flush()')  # numbered: their events are in the outbox

    def logged(self, words):
        with open(self.notifier.log_path) as log:
            return words in log.read()

    def position_reads(self):
        """How many HGETALLs (the bridge reading its position) the server has run."""
        return self.client.info('commandstats').get('cmdstat_hgetall', {}).get('calls', 0)

    def stream_ids(self):
        return [e.fields.get('event_id') for e in read_stream(self.client)] if self.client.exists(STREAM) else []

    def close(self):
        self.notifier.stop()
        self.redis.stop()
        self.db.drop()


def expect_moved_once(setup, expected_ids, what):
    expected = sorted(str(i) for i in expected_ids)
    wait_until(lambda: len(setup.stream_ids()) >= len(expected), '%d events in the stream %s' % (len(expected), what))
    ids = setup.stream_ids()
    expect(sorted(ids) == expected, '%s: the stream holds event ids %s, expected %s' % (what, ids, expected))


def scenario_stream_key_taken():
    setup = Setup('taken')
    try:
        setup.client.set(STREAM, 'not a stream')
        setup.notifier.start()
        setup.insert(3)
        waiting = outbox_event_ids(setup.db.name)
        wait_until(lambda: setup.logged('the key holds a string, not a stream'), 'the notifier to log the wrong type')
        expect(setup.client.type(STREAM) == 'string', 'the bridge overwrote a key it does not own')
        expect(outbox_event_ids(setup.db.name) == waiting, 'events left the outbox while the stream was blocked')
        setup.client.delete(STREAM)
        expect_moved_once(setup, waiting, 'after the key was deleted')
        expect(setup.notifier.alive(), 'the notifier exited')
        return '%d events waited in PostgreSQL, then moved once' % len(waiting)
    finally:
        setup.close()


def scenario_damaged_position():
    setup = Setup('damaged')
    try:
        setup.notifier.start()
        setup.insert(2)
        first = outbox_event_ids(setup.db.name)
        expect_moved_once(setup, first, 'before the damage')
        # Pruned: PostgreSQL's record of the bridge has caught up with what the stream holds.
        wait_until(lambda: not outbox_event_ids(setup.db.name), 'the outbox to be pruned')
        setup.notifier.stop()
        setup.client.hset(POSITION, mapping={'since': 'garbage', 'upto': '', 'after': '0'})
        setup.insert(3)
        waiting = outbox_event_ids(setup.db.name)
        setup.notifier.start()
        wait_until(lambda: setup.logged('the bridge position in Redis is damaged'), 'the notifier to log the damage')
        # It reads the position again every tick: after several reads it must still refuse to move.
        reads = setup.position_reads()
        wait_until(lambda: setup.position_reads() >= reads + 3, 'the bridge to read the position again')
        expect(len(setup.stream_ids()) == len(first), 'the bridge moved events from a damaged position')
        setup.client.delete(POSITION)
        expect_moved_once(setup, first + waiting, 'after the position was deleted')
        expect(setup.notifier.alive(), 'the notifier exited')
        return '%d events moved before, %d after, none twice' % (len(first), len(waiting))
    finally:
        setup.close()


def scenario_extension_version():
    setup = Setup('extension', gateway=True)

    def set_version(version):
        # The catalog row the notifier reads; the functions stay those of the installed release.
        query(setup.db.name, "UPDATE pg_catalog.pg_extension SET extversion = %s WHERE extname = 'pgfeed'", (version,))

    def logged_by(words):
        return {c for line in setup.notifier.log_since_start().splitlines() if words in line
                for c in ('component=bridge', 'component=readiness') if c in line}

    def readyz():
        answer = http_request(setup.notifier.port, '/readyz')
        return answer.status, json.loads(answer.body)

    try:
        installed = query(setup.db.name, "SELECT extversion FROM pg_extension WHERE extname = 'pgfeed'")[0][0]
        major, minor, _patch = installed.split('.')
        older, newer = '%s.%d.0' % (major, int(minor) - 1), '%s.%d.0' % (major, int(minor) + 1)
        setup.insert(3)  # before: the extension's own check refuses writes under another catalog version
        waiting = outbox_event_ids(setup.db.name)
        set_version(older)
        setup.notifier.start()
        for version, words in ((older, 'is older than this notifier supports'),
                               (newer, 'is newer than this notifier supports')):
            set_version(version)
            said = 'extension pgfeed %s %s' % (version, words)
            wait_until(lambda: {'component=bridge', 'component=readiness'} <= logged_by(said),
                       'the bridge and /readyz to log: %s' % said)
            wait_until(lambda: readyz()[1].get('extension') == version, '/readyz to report extension %s' % version)
            status, body = readyz()
            expect(status == 503 and body['mode'] == 'poll' and body['extension_supported'] is False,
                   'extension %s: /readyz answered %d %s' % (version, status, body))
            expect(outbox_event_ids(setup.db.name) == waiting and not setup.stream_ids(),
                   'events moved with extension %s' % version)
        set_version(installed)
        expect_moved_once(setup, waiting, 'after the extension was back at %s' % installed)
        wait_until(lambda: readyz()[0] == 200, '/readyz to say ready with extension %s' % installed)
        expect(readyz()[1]['extension'] == installed, '/readyz names another extension version')
        expect(setup.notifier.alive(), 'the notifier exited')
        return 'refused %s and %s, moved %d events at %s' % (older, newer, len(waiting), installed)
    finally:
        setup.close()


SCENARIOS = [('bad_configuration', scenario_bad_configuration), ('stream_key_taken', scenario_stream_key_taken),
             ('damaged_position', scenario_damaged_position), ('extension_version', scenario_extension_version)]


def main():
    if not notifier_available():
        print('%s: FAIL: no notifier binary at %s (make notifier)' % (LABEL, NOTIFIER_BIN))
        print('%s: 0 passed, %d failed' % (LABEL, len(SCENARIOS)))
        return 1
    start_watchdog(120, LABEL, cleanup=RUN.finish)
    passed = failed = 0
    for name, run in SCENARIOS:
        started = time.monotonic()
        try:
            summary = run()
            print('%s %s: OK (%.1f s) %s' % (LABEL, name, time.monotonic() - started, summary), flush=True)
            passed += 1
        except Exception as e:  # noqa: BLE001 -- every failure is reported, then the next scenario runs
            failed += 1
            RUN.failed = True
            print('%s %s: FAIL (%.1f s) %s' % (LABEL, name, time.monotonic() - started, e), flush=True)
    print('%s: %d passed, %d failed' % (LABEL, passed, failed))
    return 0 if failed == 0 else 1


if __name__ == '__main__':
    sys.exit(main())
