"""Renders chaos JSON reports (run_chaos.py --report) as one Markdown table, side by side.

  python Tests/chaos/report.py chaos-results/*.json > chaos-results/report.md
"""
from __future__ import annotations

import json
import sys


def row(r: dict) -> str:
    counts = r.get("count_by_property") or {r["first_violation"][0]: r["violation_count"]} if not r["ok"] else {}
    verdict = "ok" if r["ok"] else "violated: " + ", ".join(f"{p} x{n}" for p, n in sorted(counts.items()))
    kinds = ", ".join(f"{k} {v}" for k, v in r["faults_by_kind"].items())
    return (f"| {r['server']} | {r['nodes']} | {r['seed']} | {r['seconds']:.0f} | {r['faults_injected']} ({kinds}) | "
            f"{r['acked']} | {r['lost']} | {r['duplicates']} | {r['failed_attempts']} | "
            f"{r['worst_unavailability_s']} | {verdict} |")


def main(paths: list[str]) -> None:
    print("| server | nodes | seed | seconds | faults | acked | lost | duplicates | failed attempts "
          "| worst unavailability (s) | checker |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    reports = [json.load(open(p)) for p in paths]
    for r in reports:
        print(row(r))
    for r in reports:
        if not r["ok"]:
            print(f"\n{r['server']} x{r['nodes']} seed {r['seed']}: first violation `{r['first_violation']}`; "
                  f"replay: `run_chaos.py --server {r['server']} --nodes {r['nodes']} --seconds {r['seconds']} "
                  f"--seed {r['seed']} --kinds {','.join(r['kinds'])}`")


if __name__ == "__main__":
    main(sys.argv[1:])
