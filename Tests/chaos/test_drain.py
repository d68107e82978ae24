"""The drain after healing: how long the harness waits for a durable (`runner.DrainWatch`) and
how the workload acks a fetched batch (`Workload._ack_batch`). Pure: no servers."""
from __future__ import annotations

import asyncio

from runner import DrainWatch
from workload import Delivery, History, Workload


def test_drain_stops_when_nothing_is_left():
    w = DrainWatch(0, grace=90, limit=600, stall=30)
    assert w.keep_waiting(1, 500)
    assert not w.keep_waiting(2, 0)


def test_drain_waits_the_grace_period_even_without_progress():
    w = DrainWatch(0, grace=90, limit=600, stall=30)
    assert all(w.keep_waiting(t, 1000) for t in range(0, 90))
    assert not w.keep_waiting(90, 1000)  # no new low since t=0


def test_drain_goes_on_past_grace_while_the_backlog_falls():
    w = DrainWatch(0, grace=90, limit=600, stall=30)
    left = 10_000
    for t in range(0, 300):
        left -= 20
        assert w.keep_waiting(t, left)


def test_drain_stops_when_progress_stalls_after_grace():
    w = DrainWatch(0, grace=90, limit=600, stall=30)
    for t in range(0, 100):
        assert w.keep_waiting(t, 5000 - t)
    # Stuck at 4901 from t=99: still waiting inside the stall window, then not.
    assert w.keep_waiting(128, 4901)
    assert not w.keep_waiting(129, 4901)
    # A value that went up again (redeliveries) is no progress either.
    assert not w.keep_waiting(130, 6000)


def test_drain_never_exceeds_the_hard_limit():
    w = DrainWatch(0, grace=90, limit=600, stall=30)
    left = 10**9
    for t in range(0, 600):
        left -= 1
        assert w.keep_waiting(t, left)
    assert not w.keep_waiting(600, left - 1)


def test_drain_missing_answers_count_as_no_progress():
    w = DrainWatch(0, grace=90, limit=600, stall=30)
    assert w.keep_waiting(80, 100)
    assert w.keep_waiting(109, None)
    assert not w.keep_waiting(110, None)


class FakeMsg:
    """A delivered message whose double ack waits until every ack of the batch was sent."""

    def __init__(self, sent: list, all_sent: asyncio.Event, size: int, ok: bool):
        self.sent, self.all_sent, self.size, self.ok = sent, all_sent, size, ok

    async def ack_sync(self, timeout: float):
        self.sent.append(self)
        if len(self.sent) == self.size:
            self.all_sent.set()
        await asyncio.wait_for(self.all_sent.wait(), timeout)
        if not self.ok:
            raise asyncio.TimeoutError()


def test_ack_batch_sends_every_ack_before_waiting_and_records_only_confirmed_ones():
    async def main():
        h = History()
        wl = Workload({}, ["S"], 1, h, publishers=0)
        sent: list = []
        all_sent = asyncio.Event()
        oks = [True, False, True, True]
        batch = [(Delivery("S", "CS", f"p0-{i}", i + 1, 1, 0.0, False), FakeMsg(sent, all_sent, 4, ok))
                 for i, ok in enumerate(oks)]
        # One ack at a time would time out here: the first reply waits for the last request.
        await wl._ack_batch(batch)
        assert [d.acked for d, _ in batch] == oks
        assert all(d.t_ack > 0 for d, _ in batch if d.acked)
        assert h.errors == {"TimeoutError": 1}
    asyncio.run(main())
