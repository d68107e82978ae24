"""The short chaos profile of `make test`: three clusterd nodes, about a minute of seeded
faults under load (CHAOS0 a limits stream, CHAOS1 an interest stream), then the full checker. A failure prints the seed, the schedule and the
first violated property (replay with Tests/chaos/run_chaos.py --seed ...)."""
from __future__ import annotations

import asyncio
import os

import pytest

from runner import RunConfig, describe, run
from schedule import SHORT_KINDS

HERE = os.path.dirname(os.path.abspath(__file__))

# Properties clusterd violates today, reported to the lead with seeds (docs/chaos.md, "Findings").
# They are printed on every run but do not fail `make test` until fixed; set CHAOS_STRICT=1 to
# make them fail here too. Every other property always fails the test.
KNOWN_OPEN = {"consumer-acked-not-redelivered"}


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
                    kinds=SHORT_KINDS, streams=2, publishers=4, retention="mixed")
    report = asyncio.run(run(cfg))
    text = describe(report)
    print(text)
    strict = os.environ.get("CHAOS_STRICT") == "1"
    blocking = [(p, d) for p, d in report["first_by_property"].items() if strict or p not in KNOWN_OPEN]
    assert not blocking, f"{text}\nfirst blocking violation: {blocking[0]}"
    assert report["faults_injected"] >= 3 and report["acked"] > 0, text
