#!/usr/bin/env python3
"""Paced publishers of the SSE benchmark: `count` events at `rate` events/s, seq = first .. first+count-1.

Every event carries {"seq": n, "ts_us": <wall clock microseconds>}, ts_us taken just before the
event is published, so the load client's latency is publish-to-client (nchan) or commit-to-client
(the notifier: ts_us is read just before the autocommit INSERT is sent, so the commit is included).

  nchan:     HTTP POST of the JSON body to nchan's publisher location, on one keep-alive connection.
  notifier:  one INSERT per transaction into an attached table whose payload_columns are seq and
             ts_us; the SSE event's data then has them under "payload".

The schedule is fixed (event k is due at t0 + k/rate), spread over a few connections so that one
slow reply does not hold the others back; a publisher that falls behind sends the rest as fast as it
can, and the result says how late it got. Also a command line tool:

  publish.py nchan --port P [--path /pub] --rate R --count N [--first 1]
  publish.py pg --dbname D --rate R --count N [--first 1]
"""
import argparse
import http.client
import json
import sys
import threading
import time

# The attached table: topic column `bench` (topic "bench:1"), payload seq and ts_us.
PG_SCHEMA = """
CREATE TABLE sse_bench (
    id         bigserial PRIMARY KEY,
    bench      int NOT NULL,
    seq        bigint NOT NULL,
    ts_us      bigint NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
SELECT pgfeed.attach('public.sse_bench', topic_column => 'bench', payload_columns => ARRAY['seq', 'ts_us'],
                     id_column => 'id', created_column => 'created_at');
"""
PG_INSERT = 'INSERT INTO sse_bench (bench, seq, ts_us) VALUES (1, %s, %s)'


def paced(rate, first, count, make_sender, threads):
    """Publishes seq first .. first+count-1, event k due at t0 + k/rate, over `threads` connections
    (thread i sends the events k = i mod threads, in order): a slow reply delays only its own
    thread's next events, so the publisher is not what limits a server that answers slowly.
    make_sender() returns (send(seq), close())."""
    t0 = time.monotonic() + 0.2
    threads = max(1, min(threads, count))
    late = [0.0] * threads
    errors = []
    durations = [[] for _ in range(threads)]  # of each send: the INSERT's commit or the POST's reply

    def run(index):
        try:
            send, close = make_sender()
        except Exception as e:  # reported with the result
            errors.append(repr(e))
            return
        try:
            for k in range(index, count, threads):
                due = t0 + k / rate
                now = time.monotonic()
                if now < due:
                    time.sleep(due - now)  # the schedule, not a wait for a condition
                else:
                    late[index] = max(late[index], now - due)
                sent = time.monotonic()
                send(first + k)
                durations[index].append(time.monotonic() - sent)
        except Exception as e:
            errors.append(repr(e))
        finally:
            close()

    workers = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    elapsed = time.monotonic() - t0
    sends = sorted(d for per_thread in durations for d in per_thread)

    def pct(p):
        return 1000 * sends[min(len(sends) - 1, max(0, int(round(p / 100 * len(sends))) - 1))] if sends else None
    return {'published': count, 'seconds': elapsed, 'rate': count / elapsed if elapsed > 0 else None,
            'max_late_s': max(late), 'threads': threads, 'errors': errors[:5],
            'send_p50_ms': pct(50), 'send_p99_ms': pct(99)}


def now_us():
    return time.time_ns() // 1000


def publish_nchan(port, rate, first, count, path='/pub', host='127.0.0.1', threads=16):
    def make_sender():
        conn = http.client.HTTPConnection(host, port, timeout=60)
        headers = {'Content-Type': 'application/json'}

        def send(seq):
            body = json.dumps({'seq': seq, 'ts_us': now_us()}).encode()
            conn.request('POST', path, body, headers)  # headers and body in one send()
            reply = conn.getresponse()
            reply.read()
            if reply.status not in (200, 201, 202):
                raise RuntimeError('POST %s: %d' % (path, reply.status))
        return send, conn.close

    return paced(rate, first, count, make_sender, threads)


def publish_pg(dbname, rate, first, count, threads=2):
    import psycopg2

    def make_sender():
        conn = psycopg2.connect(dbname=dbname, application_name='bench-sse-publisher')
        conn.autocommit = True  # one row per transaction: execute() returns once committed
        cur = conn.cursor()

        def send(seq):
            cur.execute(PG_INSERT, (seq, now_us()))
        return send, conn.close

    return paced(rate, first, count, make_sender, threads)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('kind', choices=['nchan', 'pg'])
    parser.add_argument('--port', type=int)
    parser.add_argument('--path', default='/pub')
    parser.add_argument('--dbname')
    parser.add_argument('--rate', type=float, required=True)
    parser.add_argument('--count', type=int, required=True)
    parser.add_argument('--first', type=int, default=1)
    args = parser.parse_args()
    if args.kind == 'nchan':
        result = publish_nchan(args.port, args.rate, args.first, args.count, args.path)
    else:
        result = publish_pg(args.dbname, args.rate, args.first, args.count)
    print(json.dumps(result))
    return 0


if __name__ == '__main__':
    sys.exit(main())
