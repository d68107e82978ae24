"""Direct gets (`$JS.API.DIRECT.GET.<stream>`, `allow_direct`), proven against nats-server 2.15.1
and clusterd: one message with the stream headers (none with `no_hdr`), batches with
`Nats-Num-Pending` / `Nats-Last-Sequence` and a `204 EOB`, `max_bytes`, `next_by_subj` batches,
`multi_last` with `up_to_seq` (and `Nats-UpTo-Sequence` on the EOB), and the refusals
(`408 Empty Request`, `408 Bad Request`, `404 Message Not Found`, `404 No Results`)."""
from __future__ import annotations

import asyncio
import json

import pytest

pytestmark = pytest.mark.jetstream


async def _direct(nc, stream: str, body: dict, want: int) -> list[tuple[dict, bytes]]:
    """The first `want` answers to one direct get (bounded wait), headers without the time."""
    inbox = nc.new_inbox()
    sub = await nc.subscribe(inbox)
    try:
        await nc.publish(f"$JS.API.DIRECT.GET.{stream}", json.dumps(body).encode(), reply=inbox)
        out = []
        for _ in range(want):
            m = await sub.next_msg(timeout=5)
            h = dict(m.headers or {})
            h.pop("Nats-Time-Stamp", None)
            # nats-py keys the status description by an enum (`Header.DESCRIPTION`).
            out.append(({getattr(k, "value", k): v for k, v in h.items()}, m.data))
        return out
    finally:
        await sub.unsubscribe()


def _status(answer) -> tuple:
    h = answer[0]
    return h.get("Status"), h.get("Description")


@pytest.fixture
async def stream(js, uniq):
    await js.add_stream(name=uniq, subjects=[f"{uniq}.>"], allow_direct=True)
    for i in range(6):
        await js.publish(f"{uniq}.{'abc'[i % 3]}", f"v{i}".encode(), headers={"H": str(i)} if i % 2 else None)
    await js.publish(f"{uniq}.a", b"v6")
    # Any replica may answer a direct get (in cluster mode), each once it has applied: wait
    # (bounded) until twenty reads in a row see the last message.
    seen = 0
    for _ in range(200):
        got = await _direct(js._nc, uniq, {"seq": 7}, 1)
        seen = seen + 1 if got[0][1] == b"v6" else 0
        if seen == 20:
            break
        if seen == 0:
            await asyncio.sleep(0.05)
    return uniq


async def test_oneMessage_andNoHeaders(js_nc, stream):
    [(h, data)] = await _direct(js_nc, stream, {"seq": 2}, 1)
    assert (h, data) == ({"H": "1", "Nats-Stream": stream, "Nats-Subject": f"{stream}.b", "Nats-Sequence": "2"}, b"v1")
    [(h, data)] = await _direct(js_nc, stream, {"seq": 2, "no_hdr": True}, 1)
    assert (h, data) == ({}, b"v1")


async def test_batch_countsDown_andEndsWithEOB(js_nc, stream):
    got = await _direct(js_nc, stream, {"seq": 1, "batch": 3}, 4)
    assert [(h["Nats-Sequence"], h["Nats-Num-Pending"], h["Nats-Last-Sequence"]) for h, _ in got[:3]] == \
        [("1", "6", "0"), ("2", "5", "1"), ("3", "4", "2")]
    assert _status(got[3]) == ("204", "EOB")
    assert (got[3][0]["Nats-Num-Pending"], got[3][0]["Nats-Last-Sequence"]) == ("4", "3")
    # By subject, and cut by max_bytes after the first message.
    got = await _direct(js_nc, stream, {"batch": 2, "next_by_subj": f"{stream}.a"}, 3)
    assert [(h.get("Nats-Sequence"), h["Nats-Num-Pending"]) for h, _ in got] == [("1", "2"), ("4", "1"), (None, "1")]
    got = await _direct(js_nc, stream, {"seq": 1, "batch": 3, "max_bytes": 1}, 2)
    assert got[0][0]["Nats-Sequence"] == "1" and _status(got[1]) == ("204", "EOB")
    # Past the end of the stream the batch ends where it starts.
    got = await _direct(js_nc, stream, {"seq": 6, "batch": 5}, 3)
    assert [h.get("Nats-Sequence") for h, _ in got] == ["6", "7", None]
    assert "Nats-UpTo-Sequence" not in got[2][0]


async def test_multiLast_perSubject_inSequenceOrder(js_nc, stream):
    got = await _direct(js_nc, stream, {"multi_last": [f"{stream}.*"]}, 4)
    assert [(h.get("Nats-Subject"), h.get("Nats-Sequence"), h["Nats-Num-Pending"]) for h, _ in got[:3]] == \
        [(f"{stream}.b", "5", "2"), (f"{stream}.c", "6", "1"), (f"{stream}.a", "7", "0")]
    assert _status(got[3]) == ("204", "EOB") and got[3][0]["Nats-UpTo-Sequence"] == "7"
    got = await _direct(js_nc, stream, {"multi_last": [f"{stream}.a", f"{stream}.b"], "up_to_seq": 5}, 3)
    assert [h.get("Nats-Sequence") for h, _ in got] == ["4", "5", None]
    assert got[2][0]["Nats-UpTo-Sequence"] == "5"
    got = await _direct(js_nc, stream, {"multi_last": [f"{stream}.a", f"{stream}.b"], "batch": 1}, 2)
    assert got[0][0]["Nats-Sequence"] == "5" and got[1][0]["Nats-Num-Pending"] == "1"


async def test_refusals(js_nc, stream):
    for body, want in [({"batch": 2}, ("408", "Empty Request")),
                       ({"batch": 2, "last_by_subj": f"{stream}.a"}, ("408", "Bad Request")),
                       ({"seq": 99, "batch": 3}, ("404", "Message Not Found")),
                       ({"multi_last": ["nothing.*"]}, ("404", "No Results")),
                       ({"multi_last": []}, ("408", "Empty Request"))]:
        [answer] = await _direct(js_nc, stream, body, 1)
        assert _status(answer) == want, body
