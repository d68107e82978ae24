"""JetStream advisories (`$JS.EVENT.ADVISORY.>`), proven against nats-server 2.15.1 and clusterd:
stream created / updated / deleted, consumer created / deleted, a nak (`MSG_NAKED`), a
termination with its reason (`MSG_TERMINATED`) and a pause and resume (`PAUSE`), each once
(also on a three-node cluster) with nats-server's fields, a unique `id` and a `timestamp`; in a
cluster the stream's and the consumer's leader elections.
The API audit advisory (`$JS.EVENT.ADVISORY.API`) is not published by clusterd and not
checked."""
from __future__ import annotations

import asyncio
import json
import time

import pytest

from natsutil import js_api

pytestmark = pytest.mark.jetstream


async def test_advisories_onceEach_withNatsServersFields(js, js_nc, uniq, js_replicas, cluster_mode):
    events = []
    elections = []

    async def seen(m):
        if ".LEADER_ELECTED." in m.subject:
            elections.append((m.subject.removeprefix("$JS.EVENT.ADVISORY."), json.loads(m.data)))
        elif m.subject != "$JS.EVENT.ADVISORY.API":
            events.append((m.subject, json.loads(m.data)))

    await js_nc.subscribe("$JS.EVENT.ADVISORY.>", cb=seen)
    await js_nc.flush()
    await js.add_stream(name=uniq, subjects=[f"{uniq}.>"])
    r = await js_api(js_nc, f"STREAM.UPDATE.{uniq}",
                   {"name": uniq, "subjects": [f"{uniq}.>"], "max_msgs": 100, "num_replicas": js_replicas})
    assert "error" not in r, r
    for i in range(2):
        await js.publish(f"{uniq}.{i}", b"x")
    sub = await js.pull_subscribe(f"{uniq}.>", durable="c", stream=uniq)
    first, second = await sub.fetch(2, timeout=5)
    await first.nak()
    await js_nc.publish(second.reply, b"+TERM poison message")
    await js_api(js_nc, f"CONSUMER.PAUSE.{uniq}.c", {"pause_until": "2099-01-01T00:00:00Z"})
    await js_api(js_nc, f"CONSUMER.PAUSE.{uniq}.c", {})
    await js_api(js_nc, f"CONSUMER.DELETE.{uniq}.c", {})
    await js.delete_stream(uniq)

    want = {
        f"STREAM.CREATED.{uniq}": ("stream_action", {"stream", "action"}),
        f"STREAM.UPDATED.{uniq}": ("stream_action", {"stream", "action"}),
        f"CONSUMER.CREATED.{uniq}.c": ("consumer_action", {"stream", "consumer", "action"}),
        f"CONSUMER.MSG_NAKED.{uniq}.c": ("nak", {"stream", "consumer", "consumer_seq", "stream_seq", "deliveries"}),
        f"CONSUMER.MSG_TERMINATED.{uniq}.c": ("terminated", {"stream", "consumer", "consumer_seq", "stream_seq",
                                                              "deliveries", "reason"}),
        f"CONSUMER.DELETED.{uniq}.c": ("consumer_action", {"stream", "consumer", "action"}),
        f"STREAM.DELETED.{uniq}": ("stream_action", {"stream", "action"}),
    }
    end = time.monotonic() + 10
    while time.monotonic() < end and len(events) < len(want) + 2:
        await asyncio.sleep(0.1)
    await asyncio.sleep(0.5)  # any duplicate has arrived by now
    names = [s.removeprefix("$JS.EVENT.ADVISORY.") for s, _ in events]
    pauses = [b for s, b in events if s == f"$JS.EVENT.ADVISORY.CONSUMER.PAUSE.{uniq}.c"]
    assert sorted(n for n in names if ".PAUSE." not in n) == sorted(want), names
    assert [b["paused"] for b in pauses] == [True, False]
    ids = set()
    for subject, body in events:
        name = subject.removeprefix("$JS.EVENT.ADVISORY.")
        kind, fields = want.get(name, ("consumer_pause", {"stream", "consumer", "paused", "pause_until"}))
        assert body["type"] == f"io.nats.jetstream.advisory.v1.{kind}", body
        assert set(body) == fields | {"type", "id", "timestamp"}, (name, sorted(body))
        ids.add(body["id"])
    assert len(ids) == len(events)
    by = {s.removeprefix("$JS.EVENT.ADVISORY."): b for s, b in events}
    term = by[f"CONSUMER.MSG_TERMINATED.{uniq}.c"]
    assert (term["stream_seq"], term["deliveries"], term["reason"]) == (2, 1, "poison message")
    assert by[f"STREAM.UPDATED.{uniq}"]["action"] == "modify"
    # A cluster announces the stream's leader and the consumer's (elections may repeat).
    elected = {name for name, _ in elections}
    assert elected == ({f"STREAM.LEADER_ELECTED.{uniq}", f"CONSUMER.LEADER_ELECTED.{uniq}.c"} if cluster_mode else set())
    for name, body in elections:
        extra = {"consumer"} if name.startswith("CONSUMER.") else set()
        assert set(body) == {"type", "id", "timestamp", "stream", "leader", "replicas"} | extra, sorted(body)
        assert body["type"].endswith("_leader_elected") and len(body["replicas"]) == js_replicas
