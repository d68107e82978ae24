"""Regression test for finding 3 of docs/chaos.md: a node whose meta state is incomplete
answered "stream not found" (10059) for a stream that exists, as if it were authoritative.

Only the meta leader (which announces leadership after applying its whole log) may say a
stream does not exist; any other node without the stream's assignment stays silent, or says
10008 "temporarily unavailable" when it knows no meta leader. Staged deterministically: a
node that is not the meta leader is cut off from the others (route proxy) before the stream
is created, so its meta log cannot hold the stream; a client on that node asks for it.
"""
from __future__ import annotations

import asyncio
import json

import nats
from nats.js.api import StreamConfig

from cluster import ChaosCluster, run_scenario
from test_chaos_short import clusterd_bin

STREAM = "LATE"


async def _scenario(cluster: ChaosCluster) -> None:
    names = [n.name for n in cluster.nodes]
    meta = await cluster.wait_meta_leader(60)
    cut = next(n for n in names if n != meta)
    other = next(n for n in names if n not in (meta, cut))
    cluster.partition({(a, b) for a in names for b in names if a != b and cut in (a, b)})

    nc = await nats.connect(cluster.node(other).url, allow_reconnect=False, connect_timeout=3)
    try:
        js = nc.jetstream(timeout=5)
        # R3: the cut node is one of its replicas, and the two others elect a leader that
        # answers the create (an R1 stream placed on the cut node would never be answered).
        for attempt in range(20):
            try:
                await js.add_stream(StreamConfig(name=STREAM, subjects=["late.>"], num_replicas=3))
                break
            except Exception:  # noqa: BLE001 - an election in progress; or created, answer lost
                try:
                    await js.stream_info(STREAM)
                    break
                except Exception:  # noqa: BLE001
                    if attempt == 19:
                        raise
                await asyncio.sleep(0.5)
        # Sanity: the stream exists, and a missing one is still "not found" (the meta leader says so).
        assert (await js.stream_info(STREAM)).config.name == STREAM
        r = json.loads((await nc.request("$JS.API.STREAM.INFO.NOSUCH", b"", timeout=5)).data)
        assert r.get("error", {}).get("err_code") == 10059, r
    finally:
        await nc.close()

    # The cut-off node has not seen the stream's creation: it must not say it does not exist.
    answers = []
    lone = await nats.connect(cluster.node(cut).url, allow_reconnect=False, connect_timeout=3)
    try:
        for _ in range(5):
            try:
                m = await lone.request(f"$JS.API.STREAM.INFO.{STREAM}", b"", timeout=1.5)
                answers.append(json.loads(m.data))
            except nats.errors.TimeoutError:
                answers.append("silent")
            await asyncio.sleep(0.5)
    finally:
        await lone.close()
    wrong = [a for a in answers if isinstance(a, dict) and a.get("error", {}).get("err_code") == 10059]
    assert not wrong, f"{cut} (cut off, not the meta leader) answered 'stream not found' for an existing stream: {wrong}"
    assert all(a == "silent" or a.get("error", {}).get("err_code") == 10008 or a.get("config") for a in answers), answers

    # Healed, the node learns the stream.
    cluster.heal()
    lone = await nats.connect(cluster.node(cut).url, allow_reconnect=False, connect_timeout=3)
    try:
        js = lone.jetstream(timeout=3)
        for attempt in range(60):
            try:
                assert (await js.stream_info(STREAM)).config.name == STREAM
                break
            except Exception:  # noqa: BLE001 - catching up with the meta log
                if attempt == 59:
                    raise
                await asyncio.sleep(0.5)
    finally:
        await lone.close()


def test_cut_off_node_never_says_an_existing_stream_is_not_found():
    run_scenario(clusterd_bin(), "metanf", _scenario, timeout=150)
