#!/usr/bin/env python3
"""render.py - markdown tables from bench/peers/run.sh's results.jsonl (standard library only).

    render.py results.jsonl

Lines: {"system","tier","workload","record_bytes","batch","records_per_s","mb_per_s",
"p50_us","p99_us"}; tier "ceiling" (system "machine") and "calib" (driver ceilings) are
tables of their own; {"system","tier","note"} lines are printed under the tables.
A peer's produce figure above DRIVER_BOUND of its driver's ceiling (the best of its
calibration lines) is marked driver-bound.
"""
import json
import sys

SYSTEMS = ["Sluice", "Redis", "RabbitMQ", "NATS"]
PEERS = SYSTEMS[1:]
DRIVER_BOUND = 0.70
TIERS = [
    ("fsync", "Tier *fsync*: acknowledged after fsync",
     "Sluice `--flush always` + durable acks; Redis AOF `appendfsync always`; "
     "RabbitMQ quorum queue + publisher confirms; NATS 2.9 JetStream: n/a"),
    ("write", "Tier *write*: acknowledged after write (page cache)",
     "Sluice `--flush interval` + written acks; Redis AOF `appendfsync everysec`; "
     "RabbitMQ stream queue (AMQP 0.9.1) + publisher confirms; NATS JetStream file storage, defaults"),
]
DRIVERS = {
    "Redis": "hiredis, `PING <payload>` pipelined",
    "RabbitMQ": "rabbitmq-c, confirmed publish, to `amqp_fake` (a trivial AMQP server)",
    "RabbitMQ-unroutable": "rabbitmq-c, confirmed publish to RabbitMQ, unroutable (driver + RabbitMQ's front end)",
    "NATS": "C text-protocol client, core `PUB` + `PING`/`PONG`, no JetStream",
}


def size(b):
    return "1 KiB" if b == 1024 else f"{b} B"


def workloads(rows):
    order = []
    for w in ("produce", "consume", "tail", "queue"):
        keys = sorted({(r["record_bytes"], r["batch"]) for r in rows if r.get("workload") == w},
                      key=lambda k: (-k[0], k[1]))
        order += [(w, b, n) for b, n in keys]
    return order


def label(w, b, n):
    if w == "produce":
        s = f"produce {size(b)} × {n:,}"
        return f"**{s}**" if (b, n) == (1024, 1000) else s
    if w == "consume":
        return f"consume a backlog, {size(b)}"
    if w == "tail":
        return f"produce while tailing, {size(b)} (end-to-end latency)"
    return f"queue receive+ack, {size(b)} × {n:,}"


def rate(v):
    if v is None:
        return "?"
    if v >= 1e6:
        return f"{v / 1e6:.2f} M/s"
    if v >= 1e3:
        return f"{v / 1e3:.1f} k/s"
    return f"{v:.0f}/s"


def lat(v):
    if v is None:
        return "–"
    if v >= 1e6:
        return f"{v / 1e6:.1f} s"
    if v >= 10000:
        return f"{v / 1000:.0f} ms"
    if v >= 1000:
        return f"{v / 1000:.1f} ms"
    return f"{v:.0f} µs"


def cell(r, ceil=None, tail=False):
    if r is None:
        return "–"
    if tail:
        s = f"p50 {lat(r['p50_us'])}, p99 {lat(r['p99_us'])} ({rate(r['records_per_s'])})"
    else:
        s = f"{rate(r['records_per_s'])}, {r['mb_per_s']:,.0f} MB/s"
        if r.get("p50_us") is not None:
            s += f", p50/p99 {lat(r['p50_us'])}/{lat(r['p99_us'])}"
    if ceil is not None and ceil.get("records_per_s"):
        f = r["records_per_s"] / ceil["records_per_s"]
        s += f"; driver ceiling {rate(ceil['records_per_s'])} ({f:.0%})"
        if f > DRIVER_BOUND:
            s += " **driver-bound**"
    return s


def main():
    rows, notes = [], []
    with open(sys.argv[1]) as fh:
        for line in fh:
            line = line.strip()
            if not line:
                continue
            d = json.loads(line)
            (notes if "note" in d else rows).append(d)

    out = []
    ceil = [r for r in rows if r["tier"] == "ceiling"]
    out.append("### Machine ceilings (same run)\n")
    out.append("| ceiling | MB/s | ops/s | p50 | p99 |")
    out.append("|---|---:|---:|---:|---:|")
    for r in ceil:
        ops = f"{r['records_per_s']:,.0f}" if r.get("records_per_s") else "–"
        out.append(f"| {r['workload']} | {r['mb_per_s']:,.0f} | {ops} | {lat(r['p50_us'])} | {lat(r['p99_us'])} |")
    out.append("")

    cal = {(r["system"], r["record_bytes"], r["batch"]): r for r in rows if r["tier"] == "calib"}
    keys = sorted({(b, n) for _, b, n in cal}, key=lambda k: (-k[0], k[1]))
    out.append("### Driver calibration (driver against a trivial server, records/s)\n")
    out.append("| driver | against | " + " | ".join(f"{size(b)} × {n:,}" for b, n in keys) + " |")
    out.append("|---|---|" + "---:|" * len(keys))
    for s in DRIVERS:
        if any(k[0] == s for k in cal):
            out.append(f"| {s} | {DRIVERS[s]} | " + " | ".join(
                rate(cal[(s, b, n)]["records_per_s"]) if (s, b, n) in cal else "–" for b, n in keys) + " |")
    out.append("")

    for tier, title, mapping in TIERS:
        tr = [r for r in rows if r["tier"] == tier]
        tn = {n["system"]: n["note"] for n in notes if n["tier"] in (tier, "all")}
        out.append(f"### {title}\n")
        out.append(mapping + ".\n")
        out.append("Cells: records/s, payload MB/s, latency p50/p99 (produce: a batch's ack; "
                   "tail: end to end). Ratios: Sluice records/s ÷ the peer's (> 1: Sluice "
                   "ahead); tail row: Sluice p50 ÷ the peer's (< 1: Sluice ahead).\n")
        out.append("| workload | " + " | ".join(SYSTEMS) + " | " +
                   " | ".join(f"Sluice/{p}" for p in PEERS) + " |")
        out.append("|---|" + "---|" * len(SYSTEMS) + "---:|" * len(PEERS))
        for w, b, n in workloads(tr):
            by = {r["system"]: r for r in tr if (r["workload"], r["record_bytes"], r["batch"]) == (w, b, n)}
            cells, ratios = [], []
            for s in SYSTEMS:
                r = by.get(s)
                if r is None and s in tn and ("n/a" in tn[s] or "not built" in tn[s]):
                    cells.append("n/a")
                    continue
                # the driver's ceiling: the best of its calibrations (RabbitMQ has two)
                c = None
                if w == "produce" and s in PEERS:
                    cs = [v for (cs_, cb, cn), v in cal.items()
                          if (cb, cn) == (b, n) and (cs_ == s or cs_.startswith(s + "-"))]
                    c = max(cs, key=lambda v: v["records_per_s"] or 0) if cs else None
                cells.append(cell(r, c, tail=(w == "tail")))
            sl = by.get("Sluice")
            for p in PEERS:
                r = by.get(p)
                if sl is None or r is None:
                    ratios.append("–")
                elif w == "tail":
                    ok = sl.get("p50_us") and r.get("p50_us")
                    ratios.append(f"p50 {sl['p50_us'] / r['p50_us']:.2f}×" if ok else "–")
                else:
                    ok = r.get("records_per_s")
                    ratios.append(f"{sl['records_per_s'] / r['records_per_s']:.1f}×" if ok else "–")
            out.append(f"| {label(w, b, n)} | " + " | ".join(cells) + " | " + " | ".join(ratios) + " |")
        out.append("")
        for s, t in tn.items():
            out.append(f"- {s}: {t}")
        out.append("")

    other = [n for n in notes if n["tier"] not in ("fsync", "write", "all")]
    for n in other:
        out.append(f"- {n['system']} ({n['tier']}): {n['note']}")
    print("\n".join(out))


if __name__ == "__main__":
    main()
