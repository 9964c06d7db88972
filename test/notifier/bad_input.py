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
"""
import subprocess
import sys
import time

from _servers import (NOTIFIER_BIN, RUN, STREAM, FeedDatabase, Notifier, RedisServer, TestFailure,
                      notifier_available, outbox_event_ids, query, read_stream, wait_until)
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

    def __init__(self, name):
        self.db = FeedDatabase('bad_%s' % name)
        self.db.__enter__()
        self.redis = RedisServer('%s-redis' % name).start()
        self.client = self.redis.client()
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


SCENARIOS = [('bad_configuration', scenario_bad_configuration), ('stream_key_taken', scenario_stream_key_taken),
             ('damaged_position', scenario_damaged_position)]


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
