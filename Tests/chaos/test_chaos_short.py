"""The short chaos profile of `make test`: three clusterd nodes, about a minute of seeded
faults under load, then the full checker. A failure prints the seed, the schedule and the
first violated property (replay with Tests/chaos/run_chaos.py --seed ...)."""
from __future__ import annotations

import asyncio
import os

import pytest

from runner import RunConfig, describe, run
from schedule import SHORT_KINDS

HERE = os.path.dirname(os.path.abspath(__file__))


def clusterd_bin() -> str:
    b = os.environ.get("CLUSTERD_BIN") or os.path.join(HERE, "..", "..", ".build", "debug", "clusterd")
    if not os.path.isfile(b):
        pytest.fail(f"clusterd binary not found at {b}: run `swift build` or set CLUSTERD_BIN")
    return os.path.abspath(b)


@pytest.mark.chaos
def test_short_profile_three_nodes():
    seed = int(os.environ.get("CHAOS_SEED", "20261201"))
    seconds = float(os.environ.get("CHAOS_SHORT_SECONDS", "60"))
    cfg = RunConfig(kind="clusterd", binary=clusterd_bin(), nodes=3, seconds=seconds, seed=seed,
                    kinds=SHORT_KINDS, streams=2, publishers=4)
    report = asyncio.run(run(cfg))
    text = describe(report)
    print(text)
    assert report["ok"], text
    assert report["faults_injected"] >= 3 and report["acked"] > 0, text
