#!/usr/bin/env python3
"""render_multicore.py MULTICORE.jsonl - the 1-worker vs 2-worker table of run.sh.

Each line: {"tier": "write"|"fsync", "workers": 1|2, "run": <sluice-bench JSON object>}.
Prints the median records/s of each worker count per tier, their ratio and the server's
CPU-seconds per GB of payload."""
import json
import statistics
import sys

rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
runs_each = max(1, len(rows) // 4)
print("\n### Sluice on 2 cores: 1 worker vs 2 (4 shards, 2 producers, 1 KiB x 1,000, "
      "median of %d runs)\n" % runs_each)
print("| tier | 1 worker | 2 workers | 2 / 1 | server CPU-s per GB (1 / 2) |")
print("|---|---:|---:|---:|---:|")
for tier in ("write", "fsync"):
    med = {}
    for w in (1, 2):
        runs = [r["run"] for r in rows if r["tier"] == tier and r["workers"] == w]
        if runs:
            med[w] = (statistics.median(x["records_per_s"] for x in runs),
                      statistics.median(x.get("server_cpu_s_per_gb") or 0 for x in runs))
    if len(med) == 2:
        print("| %s | %.0f k/s | %.0f k/s | %.2f | %.2f / %.2f |" % (
            tier, med[1][0] / 1e3, med[2][0] / 1e3, med[2][0] / med[1][0], med[1][1], med[2][1]))
