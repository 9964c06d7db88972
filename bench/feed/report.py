#!/usr/bin/env python3
"""Formats the feed benchmark's TSV files (written by bench/feed/run.sh) as a plain-text report."""
import argparse
import sys

LABELS = {
    "base_page_not_exists": "baseline page (NOT EXISTS)",
    "base_page_left_join": "baseline page (LEFT JOIN)",
    "base_count_not_exists": "baseline count (NOT EXISTS)",
    "base_count_left_join": "baseline count (LEFT JOIN)",
    "feed_page": "pgfeed page unread, joined",
    "feed_unread_count": "pgfeed unread_count",
    "base_mark_read": "baseline mark one (INSERT)",
    "feed_mark_read": "pgfeed mark_read one",
    "feed_mark_all_read": "pgfeed mark_all_read (rb)",
    "insert_1_bare": "insert 1 row/tx, bare",
    "insert_1_feed": "insert 1 row/tx, pgfeed",
    "insert_10_bare": "insert 10 rows/tx, bare",
    "insert_10_feed": "insert 10 rows/tx, pgfeed",
}


def num(s):
    try:
        return float(s)
    except (TypeError, ValueError):
        return None


def load(path):
    meta, rows = {}, {}
    with open(path) as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if parts[0] == "meta":
                meta[parts[1]] = parts[2] if len(parts) > 2 else ""
                continue
            size, name, readers, clients, calls, server, client, p95, tps, xacts, effect = (parts + [""] * 11)[:11]
            rows[(name, readers)] = {
                "size": size, "name": name, "readers": readers, "clients": int(clients),
                "calls": int(calls or 0), "server": num(server), "client": num(client), "p95": num(p95),
                "tps": num(tps), "xacts": int(xacts or 0), "effect": num(effect),
            }
    return meta, rows


def fmt(v, digits=3):
    return "-" if v is None else f"{v:.{digits}f}"


def ratio_text(base, mine, what):
    if base is None or mine is None or mine == 0:
        return "-"
    r = base / mine
    return f"{r:,.1f}x faster than {what}" if r >= 1 else f"{1 / r:,.2f}x slower than {what}"


def changed(r):
    return "" if r["effect"] is None else f"{r['effect']:.1f}%"


def verdict(ok):
    return "PASS" if ok else "FAIL"


def report_size(meta, rows, targets):
    size = meta["size"]
    n, users, heavy = int(meta["activities"]), int(meta["users"]), int(meta["heavy"])
    out = []
    out.append(f"== Size {size}: {n:,} activities, {users:,} users ({heavy:,} heavy readers with the newest "
               f"{int(meta['heavy_marks']):,} read, {users - heavy:,} light with ~300 among the newest 5,000); "
               f"{int(meta['marks']):,} read marks")
    out.append(f"   load: {meta.get('load', '?')}; cases took {meta.get('duration', '?')} s")
    out.append("")
    header = (f"{'case':<30} {'readers':<7} {'cl':>2} {'server ms':>10} {'client ms':>10} {'p95 ms':>9} "
              f"{'tps':>10} {'changed':>7}  {'vs baseline (server mean)':<30} {'target':<30} {'result':<6}")
    out.append(header)
    out.append("-" * len(header))

    def get(name, readers):
        return rows.get((name, readers))

    def server(name, readers):
        r = get(name, readers)
        return r["server"] if r else None

    order = ["base_page_not_exists", "base_page_left_join", "feed_page",
             "base_count_not_exists", "base_count_left_join", "feed_unread_count",
             "base_mark_read", "feed_mark_read", "feed_mark_all_read"]
    for readers in ("heavy", "light"):
        for name in order:
            r = get(name, readers)
            if not r:
                continue
            cmp, target, result = "", "", ""
            if name == "feed_page":
                base = server("base_page_left_join", readers)
                cmp = ratio_text(base, r["server"], "LEFT JOIN")
                if readers == "heavy":
                    target = ">=50x LEFT JOIN, <0.3 ms on M"
                    if size == "M":
                        ok = base is not None and r["server"] is not None and base / r["server"] >= 50 and r["server"] < 0.3
                        result = verdict(ok)
                        targets.append((f"{size} heavy page >= 50x LEFT JOIN and < 0.3 ms",
                                        f"{cmp}, {fmt(r['server'])} ms", ok))
                    else:
                        result = "n/a"
                else:
                    target = "<=1.5x LEFT JOIN"
                    ok = base is not None and r["server"] is not None and r["server"] <= 1.5 * base
                    result = verdict(ok)
                    targets.append((f"{size} light page <= 1.5x LEFT JOIN", cmp, ok))
            elif name == "feed_unread_count":
                bases = [b for b in (server("base_count_not_exists", readers), server("base_count_left_join", readers)) if b]
                base = min(bases) if bases else None
                cmp = ratio_text(base, r["server"], "anti-join")
                ok_abs = r["server"] is not None and r["server"] < 0.1
                if size == "M":
                    target = "<0.1 ms, >=1000x anti-join"
                    ok = ok_abs and base is not None and base / r["server"] >= 1000
                    targets.append((f"{size} {readers} unread_count < 0.1 ms and >= 1000x the faster count anti-join",
                                    f"{fmt(r['server'], 4)} ms, {cmp}", ok))
                else:
                    target = "<0.1 ms"
                    ok = ok_abs
                    targets.append((f"{size} {readers} unread_count < 0.1 ms", f"{fmt(r['server'], 4)} ms", ok))
                result = verdict(ok)
            elif name == "feed_mark_read":
                cmp = ratio_text(server("base_mark_read", readers), r["server"], "INSERT")
                target = "<0.2 ms"
                ok = r["server"] is not None and r["server"] < 0.2
                result = verdict(ok)
                targets.append((f"{size} {readers} mark_read of one item < 0.2 ms", f"{fmt(r['server'], 4)} ms", ok))
            elif name == "feed_mark_all_read":
                target = "<0.2 ms"
                ok = r["server"] is not None and r["server"] < 0.2
                result = verdict(ok)
                targets.append((f"{size} {readers} mark_all_read < 0.2 ms", f"{fmt(r['server'], 4)} ms", ok))
            out.append(f"{LABELS[name]:<30} {readers:<7} {r['clients']:>2} {fmt(r['server'], 4):>10} "
                       f"{fmt(r['client'], 4):>10} {fmt(r['p95'], 3):>9} {fmt(r['tps'], 1):>10} {changed(r):>7}  "
                       f"{cmp:<30} {target:<30} {result:<6}".rstrip())
        out.append("")
    for rows_per_tx in (1, 10):
        bare, feed = get(f"insert_{rows_per_tx}_bare", "all"), get(f"insert_{rows_per_tx}_feed", "all")
        for r in (bare, feed):
            if not r:
                continue
            cmp, target, result = "", "", ""
            if r is feed and bare and bare["tps"] and feed["tps"] is not None:
                share = 100 * feed["tps"] / bare["tps"]
                cmp = f"{share:.1f}% of bare tps ({feed['tps'] * rows_per_tx:,.0f} rows/s)"
                target = ">=50% of bare tps"
                ok = share >= 50
                result = verdict(ok)
                targets.append((f"{size} insert {rows_per_tx} row(s)/tx, 8 clients: pgfeed >= 50% of bare",
                                f"{share:.1f}% ({feed['tps']:.0f} vs {bare['tps']:.0f} tps)", ok))
            elif r is bare and r["tps"] is not None:
                cmp = f"({r['tps'] * rows_per_tx:,.0f} rows/s)"
            out.append(f"{LABELS[r['name']]:<30} {'-':<7} {r['clients']:>2} {fmt(r['server'], 4):>10} "
                       f"{fmt(r['client'], 4):>10} {fmt(r['p95'], 3):>9} {fmt(r['tps'], 1):>10} {changed(r):>7}  "
                       f"{cmp:<30} {target:<30} {result:<6}".rstrip())
    out.append("")
    marks = int(meta["marks"])
    base_b, feed_b = int(meta["base_bytes"]), int(meta["feed_bytes"])
    per_mark = feed_b / marks if marks else 0
    ok = per_mark <= 16
    targets.append((f"{size} <= 16 bytes per read mark", f"{per_mark:.1f} bytes", ok))
    out.append("storage after loading (pg_total_relation_size: heap, indexes, TOAST, free space):")
    out.append(f"  user_activity_reads (PK index included): {base_b / 1048576:9.1f} MiB = {base_b / marks:6.1f} bytes per read mark")
    out.append(f"  pgfeed read state (readers + read_chunks + topic_nets): {feed_b / 1048576:9.1f} MiB = "
               f"{per_mark:6.1f} bytes per read mark   target <= 16: {verdict(ok)}")
    out.append(f"    {meta.get('feed_parts', '')}")
    hs = [int(x) for x in meta["heavy_state"].split("/")]
    ls = [int(x) for x in meta["light_state"].split("/")]
    hm, lm = int(meta["heavy_marks_total"]), int(meta["light_marks_total"])
    if hm:
        out.append(f"    row bytes (pg_column_size) heavy readers: read_chunks {hs[0] / hm:.2f} + topic_nets {hs[1] / hm:.2f} bytes per mark")
    if lm:
        out.append(f"    row bytes (pg_column_size) light readers: read_chunks {ls[0] / lm:.2f} + topic_nets {ls[1] / lm:.2f} bytes per mark")
    out.append(f"  shared item index (pgfeed.items + topics, not per user): {int(meta['items_bytes']) / 1048576:.1f} MiB")
    out.append("")
    out.append("server ms: pg_stat_statements mean_exec_time of the top-level statement (planning and commit excluded; "
               "-M prepared). client ms / p95: per-transaction latency from pgbench --log.")
    out.append("changed: share of mark calls that changed read state (the rest hit an item already read).")
    out.append("mark_all_read runs as BEGIN; mark_all_read; ROLLBACK so every call retires a full history; "
               "its client latency includes the three round trips.")
    out.append("")
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--machine", default="")
    ap.add_argument("--postgres", default="")
    ap.add_argument("--runtime", default="")
    ap.add_argument("tsv", nargs="+")
    args = ap.parse_args()

    out = ["pgfeed feed benchmark (bench/feed/run.sh)",
           f"machine: {args.machine}",
           f"server: {args.postgres}",
           ""]
    targets = []
    loaded = [load(p) for p in args.tsv]
    for meta, rows in loaded:
        out += report_size(meta, rows, targets)

    # Each of page and unread_count within 1.5x of its own fastest case over sizes and reader kinds.
    for name, what in (("feed_page", "page"), ("feed_unread_count", "unread_count")):
        cases = [(f"{meta['size']}/{readers}", rows[(name, readers)]["server"])
                 for meta, rows in loaded for readers in ("heavy", "light")
                 if (name, readers) in rows and rows[(name, readers)]["server"] is not None]
        if len(cases) < 2:
            continue
        fastest = min(v for _, v in cases)
        worst = max(cases, key=lambda c: c[1])
        ok = worst[1] <= 1.5 * fastest
        detail = ", ".join(f"{k} {v:.4f}" for k, v in cases)
        targets.append((f"{what} within 1.5x of its fastest case ({', '.join(k for k, _ in cases)})",
                        f"slowest {worst[0]} = {worst[1] / fastest:.2f}x fastest ({detail} ms)", ok))

    out.append("== Targets")
    width = max(len(t[0]) for t in targets) if targets else 10
    for what, value, ok in targets:
        out.append(f"  {verdict(ok):<4}  {what:<{width}}  {value}")
    passed = sum(1 for t in targets if t[2])
    out.append(f"  {passed} of {len(targets)} targets met")
    if args.runtime:
        out.append(f"\ntotal run time: {int(args.runtime) // 60} min {int(args.runtime) % 60} s")
    print("\n".join(out))


if __name__ == "__main__":
    sys.exit(main())
