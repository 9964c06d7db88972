#!/usr/bin/env python3
"""Formats the write benchmark's TSV (written by bench/feed/writes.sh) as a plain-text report, the
lag report of bench/feed/lag.py after it."""
import argparse
import sys
import textwrap

# (result case, its baseline, what is compared, {clients: minimum ratio})
PAIRS = [
    ("mark_feed", "mark_base", "mark_read of one item vs INSERT ... ON CONFLICT DO NOTHING", {1: 0.6, 8: 0.8, 32: 0.8}),
    ("insert_feed", "insert_bare", "one-row insert, attached vs bare table", {8: 0.6, 32: 0.6}),
]
# Numbering after commit: an attached insert counts once its item is numbered. A slice whose
# backlog (CALL pgfeed.flush() right after it) takes longer than this has not been kept up with.
BACKLOG_LIMIT_MS = 1000.0
LABELS = {
    "mark_base": "baseline: INSERT INTO reads",
    "mark_feed": "pgfeed.mark_read, one item",
    "insert_bare": "baseline: insert, bare table",
    "insert_feed": "insert, attached table",
}


def num(s):
    try:
        return float(s)
    except (TypeError, ValueError):
        return None


def load(path):
    """meta, {(name, clients): [slice, ...]}, {(name, clients): case}"""
    meta, slices, cases = {}, {}, {}
    with open(path) as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if parts[0] == "meta":
                meta[parts[1]] = parts[2] if len(parts) > 2 else ""
            elif parts[0] == "slice":
                (name, clients, rnd, tps, xacts, failed, busy, total, syncs, sync_ms, flush, waits) = (
                    parts[1:] + [""] * 12)[:12]
                slices.setdefault((name, int(clients)), []).append({
                    "round": int(rnd), "tps": num(tps), "xacts": int(xacts or 0), "failed": int(failed or 0),
                    "busy": num(busy), "total": num(total), "syncs": num(syncs), "sync_ms": num(sync_ms),
                    "flush": num(flush),
                    "waits": {w: int(n) for w, _, n in (item.rpartition("=") for item in waits.split(";") if item)}})
            elif parts[0] == "case":
                (name, clients, server, mean, p50, p99, effect) = (parts[1:] + [""] * 7)[:7]
                cases[(name, int(clients))] = {"server": num(server), "mean": num(mean), "p50": num(p50),
                                               "p99": num(p99), "effect": num(effect)}
    return meta, slices, cases


def summary(slices, case):
    """One side of a pair over its slices: tps is the mean of the slices' (equal lengths)."""
    s = {"tps": sum(x["tps"] for x in slices) / len(slices),
         "xacts": sum(x["xacts"] for x in slices), "failed": sum(x["failed"] for x in slices)}
    busy, total = sum(x["busy"] or 0 for x in slices), sum(x["total"] or 0 for x in slices)
    s["cpu"] = 100 * busy / total if total else None
    syncs = sum(x["syncs"] or 0 for x in slices)
    s["syncs_per_tx"] = syncs / s["xacts"] if s["xacts"] else None
    s["sync_ms"] = sum(x["sync_ms"] or 0 for x in slices) / syncs if syncs else None
    waits = {}
    for x in slices:
        for w, n in x["waits"].items():
            waits[w] = waits.get(w, 0) + n
    s["waits"] = waits
    flushes = [x["flush"] for x in slices if x["flush"] is not None]
    s["flush"] = max(flushes) if flushes else None
    s.update(case or {})
    return s


def wait_text(waits, top=4):
    total = sum(waits.values())
    if not total:
        return "-"
    ranked = sorted(waits.items(), key=lambda kv: -kv[1])
    shown = [(w, n) for w, n in ranked[:top] if 100 * n / total >= 0.5]
    rest = total - sum(n for _, n in shown)
    text = ", ".join(f"{w} {100 * n / total:.0f}%" for w, n in shown)
    return text + (f", others {100 * rest / total:.1f}%" if rest else "") + f" ({total:,} samples)"


def fmt(v, spec="{:.3f}"):
    return "-" if v is None else spec.format(v)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runtime", default="")
    ap.add_argument("--lag", help="the lag report to append")
    ap.add_argument("tsv")
    args = ap.parse_args()
    meta, slices, cases = load(args.tsv)
    clients = sorted({c for _, c in slices})
    out = [f"pgfeed write benchmark (bench/feed/writes.sh), {meta.get('date', '?')}",
           f"machine: {meta.get('machine', '')}; load average at the start {meta.get('loadavg', '?')}",
           f"server: {meta.get('postgres', '')}",
           f"settings: {meta.get('settings', '')}",
           f"pgfeed: {meta.get('pgfeed', '')}",
           f"data: {meta.get('data', '')}",
           ""]
    out.append(f"Write concurrency: pgbench -M prepared; per client count, a pair (baseline A, result B) after "
               f"{meta.get('warmup', '?')} s of warm-up each and a CHECKPOINT runs {meta.get('rounds', '?')} rounds of "
               f"{meta.get('slice', '?')} s slices, interleaved A B B A ...")
    out.append("")
    header = (f"{'case':<30} {'clients':>7} {'tps':>8} {'baseline':>8} {'ratio':>6} {'rounds':>11} {'target':>6} "
              f"{'result':<6} {'mean ms':>8} {'p50 ms':>7} {'p99 ms':>8} {'server ms':>9} {'changed':>7} "
              f"{'syncs/tx':>8} {'sync ms':>8} {'cpu':>4} {'backlog':>8}")
    targets = []
    for name, base_name, what, minimum in PAIRS:
        out.append(what)
        out.append(header)
        out.append("-" * len(header))
        wait_lines = []
        for c in clients:
            if (name, c) not in slices or (base_name, c) not in slices:
                continue
            base = summary(slices[(base_name, c)], cases.get((base_name, c)))
            mine = summary(slices[(name, c)], cases.get((name, c)))
            for case, r in ((base_name, base), (name, mine)):
                ratio = spread = target = result = ""
                if r is mine and base["tps"]:
                    q = mine["tps"] / base["tps"]
                    ratio = f"{q:.2f}x"
                    # The ratio of each round's slices: how much the machine moved under the pair.
                    per_round = {}
                    for side, rows in ((0, slices[(base_name, c)]), (1, slices[(name, c)])):
                        for x in rows:
                            per_round.setdefault(x["round"], [None, None])[side] = x["tps"]
                    qs = [m / b for b, m in per_round.values() if b and m is not None]
                    if qs:
                        spread = f"{min(qs):.2f}-{max(qs):.2f}"
                    if c in minimum:
                        kept_up = mine["flush"] is None or mine["flush"] < BACKLOG_LIMIT_MS
                        ok = q >= minimum[c] and not mine["failed"] and kept_up
                        target, result = f">={minimum[c]:g}x", "PASS" if ok else "FAIL"
                        behind = "" if kept_up else f"; numbering fell behind: flush took {mine['flush']:,.0f} ms"
                        targets.append((f"{what}, {c} clients: >= {minimum[c]:g}x",
                                        f"{q:.2f}x ({mine['tps']:,.0f} vs {base['tps']:,.0f} tps; rounds {spread}{behind})",
                                        ok))
                failed = f" ({r['failed']} failed)" if r["failed"] else ""
                out.append(f"{LABELS[case]:<30} {c:>7} {fmt(r['tps'], '{:,.0f}'):>8} "
                           f"{fmt(base['tps'] if r is mine else None, '{:,.0f}'):>8} {ratio:>6} {spread:>11} "
                           f"{target:>6} {result:<6} {fmt(r.get('mean')):>8} {fmt(r.get('p50')):>7} "
                           f"{fmt(r.get('p99')):>8} {fmt(r.get('server'), '{:.4f}'):>9} "
                           f"{fmt(r.get('effect'), '{:.1f}%'):>7} {fmt(r['syncs_per_tx'], '{:.2f}'):>8} "
                           f"{fmt(r['sync_ms']):>8} {fmt(r['cpu'], '{:.0f}%'):>4} "
                           f"{fmt(r['flush'], '{:.1f}ms'):>8}{failed}")
                wait_lines.append(f"  {LABELS[case]:<30} {c:>2} clients: {wait_text(r['waits'])}")
        out.append("waits of pgbench's active sessions (pg_stat_activity every 20 ms; CPU: no wait event), "
                   "share of samples:")
        out += wait_lines
        out.append("")
    notes = ("tps: pgbench (connection time excluded), mean over the rounds; ratio: tps over the baseline's; rounds: "
             "the ratio in the slowest and the fastest round (how much the machine moved under the pair). mean/p50/p99 "
             "ms: client latency per transaction, commit included (pgbench --log). server ms: pg_stat_statements mean "
             "time of the statement, commit excluded. changed: share of transactions that changed something (a mark of "
             "an item already read changes nothing). syncs/tx and sync ms: WAL flushes (fdatasync) per transaction and "
             "their mean duration (pg_stat_wal with track_wal_io_timing, as backends report them); below 1 per "
             "transaction is group commit at work. cpu: the machine's CPU busy during the slices, every process "
             "included. backlog: the longest CALL pgfeed.flush() right after a slice, the numbering the slice left "
             "behind ('-': numbering at commit, nothing left); an insert target also needs it under "
             f"{BACKLOG_LIMIT_MS:,.0f} ms.")
    out += textwrap.wrap(notes, 120)
    out.append("")
    out.append("Write concurrency targets")
    width = max(len(t[0]) for t in targets) if targets else 10
    for what, value, ok in targets:
        out.append(f"  {'PASS' if ok else 'FAIL':<4}  {what:<{width}}  {value}")
    out.append(f"  {sum(1 for t in targets if t[2])} of {len(targets)} targets met")
    out.append("")
    if args.lag:
        with open(args.lag) as f:
            out.append(f.read().rstrip("\n"))
    if args.runtime:
        out.append(f"\ntotal run time: {int(args.runtime) // 60} min {int(args.runtime) % 60} s")
    print("\n".join(out))


if __name__ == "__main__":
    sys.exit(main())
