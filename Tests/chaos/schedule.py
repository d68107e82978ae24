"""Seeded fault schedules (pure: no I/O). A schedule is a list of `Fault`s, printed as JSON
so a failing run can be replayed with `--seed` (same seed, same kinds -> same schedule).

Targets that depend on the live cluster ("the stream leader", "two replicas of the stream")
are named by role here and resolved when the fault fires; the run log records the node.
"""
from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass, field

# Every fault kind the harness can inject.
KINDS = (
    "kill",            # kill -9 a random node, restart it with its data at heal
    "kill_leader",     # kill -9 the stream leader
    "kill_quorum",     # kill -9 two replicas of a stream: quorum loss, writes must not be acked
    "pause",           # SIGSTOP a random node, SIGCONT at heal
    "pause_leader",    # SIGSTOP the stream leader
    "wipe",            # kill -9 a follower, wipe its store dir, restart it empty (a replaced volume)
    "isolate",         # symmetric partition: one random node cut off from all others
    "isolate_leader",  # the stream leader cut off from its followers
    "asymmetric",      # a node's outbound route traffic is stalled, inbound still flows
    "split",           # random minority / majority halves (size >= 5: 2 | 3)
    "kill_all",        # kill -9 every node at once, restart all with their data
    "power_cut",       # power cut of a random node: everything it had not fsync'd is dropped
    "power_cut_all",   # power cut of every node at once
    "corrupt",         # kill -9 a follower, flip bytes in a sealed segment of its stream log, restart it
    "clock_forward",   # the stream leader's wall clock jumps 1-10 min ahead; put right at heal
    "clock_back",      # the stream leader's wall clock jumps 1-10 min back; put right at heal
)
# Kinds that need clusterd's test-only power-cut mode (CLUSTERD_TEST_POWER_CUT=1, SIGPWR).
POWER_CUT_KINDS = ("power_cut", "power_cut_all")
# Kinds that need clusterd's test-only clock offset (CLUSTERD_TEST_CLOCK, SIGURG).
CLOCK_KINDS = ("clock_forward", "clock_back")
# The short profile of `make test` (kinds clusterd survives today; see docs/chaos.md for the rest).
SHORT_KINDS = ("kill", "kill_leader", "kill_quorum", "pause", "isolate", "asymmetric")
# Kinds that a nats-server comparison run uses (the brief: kill / pause / partition).
NATS_KINDS = ("kill", "kill_leader", "kill_quorum", "pause", "pause_leader", "isolate",
              "isolate_leader", "asymmetric", "split")


@dataclass
class Fault:
    at: float          # seconds after the workload starts
    kind: str
    duration: float    # how long the fault holds before heal
    pick: int          # seeded choice among candidates resolved at run time
    stream: int        # which workload stream the role-based targets refer to
    resolved: dict = field(default_factory=dict)  # filled in when it fires (nodes hit, etc.)

    def to_json(self) -> dict:
        return asdict(self)


def make_schedule(seed: int, seconds: float, kinds: tuple[str, ...], streams: int,
                  hold: tuple[float, float] = (2.0, 6.0), settle: tuple[float, float] = (4.0, 8.0),
                  warmup: float = 3.0) -> list[Fault]:
    """Faults one after another: each holds for `hold` seconds, then the cluster heals and
    settles for `settle` seconds before the next. The last fault heals before `seconds`."""
    rng = random.Random(seed)
    out: list[Fault] = []
    t = warmup
    while True:
        d = round(rng.uniform(*hold), 2)
        gap = round(rng.uniform(*settle), 2)
        if t + d + gap > seconds:
            break
        out.append(Fault(at=round(t, 2), kind=rng.choice(kinds), duration=d,
                         pick=rng.randrange(1 << 30), stream=rng.randrange(streams)))
        t += d + gap
    return out


def dump(schedule: list[Fault]) -> str:
    return json.dumps([f.to_json() for f in schedule])
