#!/usr/bin/env python3
"""Formats the write benchmark's TSV (written by bench/feed/writes.sh) as a plain-text report, the
lag report of bench/feed/lag.py after it."""
import argparse
import sys

# (result case, its baseline, what is compared, {clients: minimum ratio})
PAIRS = [
    ("mark_feed", "mark_base", "mark_read of one item vs INSERT ... ON CONFLICT DO NOTHING", {1: 0.6, 8: 0.8, 32: 0.8}),
    ("insert_feed", "insert_bare", "one-row insert, attached vs bare table", {8: 0.6, 32: 0.6}),
]
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
    meta, rows = {}, {}
    with open(path) as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if parts[0] == "meta":
                meta[parts[1]] = parts[2] if len(parts) > 2 else ""
            elif parts[0] == "case":
                (name, clients, tps, xacts, failed, server, mean, p50, p99, effect, flush, busy) = (parts[1:] + [""] * 12)[:12]
                rows[(name, int(clients))] = {
                    "tps": num(tps), "xacts": int(xacts or 0), "failed": int(failed or 0), "server": num(server),
                    "mean": num(mean), "p50": num(p50), "p99": num(p99), "effect": num(effect), "flush": num(flush),
                    "busy": num(busy),
                }
    return meta, rows


def fmt(v, spec="{:.3f}"):
    return "-" if v is None else spec.format(v)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runtime", default="")
    ap.add_argument("--lag", help="the lag report to append")
    ap.add_argument("tsv")
    args = ap.parse_args()
    meta, rows = load(args.tsv)
    clients = sorted({c for _, c in rows})
    out = [f"pgfeed write benchmark (bench/feed/writes.sh), {meta.get('date', '?')}",
           f"machine: {meta.get('machine', '')}; load average at the start {meta.get('loadavg', '?')}",
           f"server: {meta.get('postgres', '')}",
           f"settings: {meta.get('settings', '')}",
           f"pgfeed: {meta.get('pgfeed', '')}",
           f"data: {meta.get('data', '')}",
           ""]
    out.append(f"Write concurrency: pgbench -M prepared, {meta.get('seconds', '?')} s per case after "
               f"{meta.get('warmup', '?')} s of warm-up and a CHECKPOINT; each case right after its baseline")
    out.append("")
    header = (f"{'case':<30} {'clients':>7} {'tps':>9} {'baseline tps':>12} {'ratio':>6} {'target':>7} {'result':<6} "
              f"{'mean ms':>8} {'p50 ms':>7} {'p99 ms':>7} {'server ms':>9} {'changed':>7} {'flush ms':>8} {'cpu':>4}")
    targets = []
    for name, base_name, what, minimum in PAIRS:
        out.append(what)
        out.append(header)
        out.append("-" * len(header))
        for c in clients:
            for case in (base_name, name):
                r = rows.get((case, c))
                if not r:
                    continue
                base = rows.get((base_name, c))
                ratio = target = result = ""
                if case == name and base and base["tps"] and r["tps"] is not None:
                    q = r["tps"] / base["tps"]
                    ratio = f"{q:.2f}x"
                    if c in minimum:
                        ok = q >= minimum[c] and not r["failed"]
                        target, result = f">={minimum[c]:g}x", "PASS" if ok else "FAIL"
                        targets.append((f"{what}, {c} clients: >= {minimum[c]:g}x", f"{q:.2f}x "
                                        f"({r['tps']:,.0f} vs {base['tps']:,.0f} tps)", ok))
                failed = f" ({r['failed']} failed)" if r["failed"] else ""
                out.append(f"{LABELS[case]:<30} {c:>7} {fmt(r['tps'], '{:,.0f}'):>9} "
                           f"{fmt(base['tps'] if base and case == name else None, '{:,.0f}'):>12} {ratio:>6} "
                           f"{target:>7} {result:<6} {fmt(r['mean']):>8} {fmt(r['p50']):>7} {fmt(r['p99']):>7} "
                           f"{fmt(r['server'], '{:.4f}'):>9} {fmt(r['effect'], '{:.1f}%'):>7} "
                           f"{fmt(r['flush'], '{:.1f}'):>8} {fmt(r['busy'], '{:.0f}%'):>4}{failed}")
        out.append("")
    out.append("tps: pgbench, without connection time; ratio: tps over the baseline's at the same client count. "
               "mean/p50/p99 ms: client latency per transaction (pgbench --log), commit included. "
               "server ms: pg_stat_statements mean time of the statement (commit excluded). changed: share of "
               "transactions that changed something (a mark of an item already read changes nothing). flush ms: "
               "CALL pgfeed.flush() right after the case, the numbering backlog it left ('-': numbering at commit, "
               "no backlog). cpu: the machine's CPU busy during the case, every process included.")
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
