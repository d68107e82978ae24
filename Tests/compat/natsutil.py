"""Helpers around nats-py quirks that matter for deterministic tests."""
from __future__ import annotations

import asyncio
import json
import time

import nats.errors
import nats.js.errors


async def publish_until_received(pub, subject: str, data: bytes, sub, attempts: int = 10, wait_s: float = 1.0):
    """Publishes on `pub` until `sub` gets a message (bounded), then returns it; None if none
    came. For interest that reaches the publisher's server asynchronously (an import across
    accounts, a subscription replayed after a reconnect)."""
    for _ in range(attempts):
        await pub.publish(subject, data)
        await pub.flush()
        try:
            return await sub.next_msg(timeout=wait_s)
        except nats.errors.TimeoutError:
            continue
    return None


async def publish_until_refused(js, subject: str, data: bytes, attempts: int = 2000):
    """JetStream-publishes `data` until a publish is refused (bounded): (how many were stored,
    the refusal or None)."""
    from nats.js.errors import APIError
    stored = 0
    for _ in range(attempts):
        try:
            await js.publish(subject, data)
        except APIError as err:
            return stored, err
        stored += 1
    return stored, None


async def settle(*conns) -> None:
    """Make sure every command queued on each connection has been processed by the server.

    nats-py 2.16 `flush()` writes its PING straight to the socket while earlier commands (a
    SUB just issued) may still wait in the client's pending buffer for the flusher task, so
    the PONG can come back before the server has seen the SUB (measured: ~5-10% of new
    subscriptions missed a publish from another connection). After one flush has
    round-tripped, the flusher has run, so a second flush is a real barrier.
    """
    for c in conns:
        await c.flush()
        await c.flush()


async def pull_raw(nc, stream: str, consumer: str, body: dict, until_status: bool, max_msgs: int = 100,
                   wait_s: float = 3.0):
    """Send one pull request; collect messages (and the terminating status, if any)."""
    inbox = nc.new_inbox()
    sub = await nc.subscribe(inbox)
    await settle(nc)
    await nc.publish(f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{consumer}", json.dumps(body).encode(), reply=inbox)
    msgs = []
    deadline = time.monotonic() + wait_s
    while len(msgs) < max_msgs and time.monotonic() < deadline:
        try:
            m = await sub.next_msg(timeout=max(0.01, deadline - time.monotonic()))
        except nats.errors.TimeoutError:
            break
        msgs.append(m)
        if until_status and m.headers and "Status" in m.headers:
            break
    await sub.unsubscribe()
    return msgs


def status_of(m):
    return (m.headers or {}).get("Status")


async def stream_state(js, stream: str, want: tuple, cluster_mode: bool, bound_s: float = 5.0):
    """(messages, first_seq) of `stream`. One node removes acked messages before the ack's reply;
    in a cluster the removal is replicated after it, so cluster mode polls (bounded) for `want`."""
    deadline = time.monotonic() + bound_s
    while True:
        s = (await js.stream_info(stream)).state
        got = (s.messages, s.first_seq)[:len(want)]
        if got == want or not cluster_mode or time.monotonic() > deadline:
            return got
        await asyncio.sleep(0.05)


async def wait_state(js, stream: str, check, deadline_s: float = 15.0):
    """Polls `stream`'s state until `check(state)` holds (bounded; fails with the last state):
    for what happens on a timer (max_age, message TTLs, markers)."""
    end = time.monotonic() + deadline_s
    while True:
        st = (await js.stream_info(stream)).state
        if check(st):
            return st
        assert time.monotonic() < end, f"stream {stream} state never matched: {st}"
        await asyncio.sleep(0.2)


async def js_api(nc, subject: str, body: dict) -> dict:
    """A JetStream API request (`$JS.API.` + `subject`) and its decoded answer, errors included."""
    return json.loads((await nc.request("$JS.API." + subject, json.dumps(body).encode(), timeout=5)).data)


async def stored_messages(js, stream: str, detail: bool = False) -> list[tuple]:
    """(sequence, subject, data) of every message of `stream`, with (headers, time) after them
    when `detail`."""
    st = (await js.stream_info(stream)).state
    out = []
    for seq in range(max(st.first_seq, 1), st.last_seq + 1):
        try:
            m = await js.get_msg(stream, seq)
        except nats.js.errors.NotFoundError:
            continue
        out.append((seq, m.subject, m.data, m.headers, m.time) if detail else (seq, m.subject, m.data))
    return out


async def snapshot(nc, stream: str, **opts) -> tuple[dict, bytes]:
    """The snapshot answer and the archive's bytes, every chunk acknowledged."""
    inbox = nc.new_inbox()
    sub = await nc.subscribe(inbox)
    answer = await js_api(nc, f"STREAM.SNAPSHOT.{stream}", {"deliver_subject": inbox, **opts})
    assert "error" not in answer, answer
    chunks = []
    while True:
        m = await sub.next_msg(timeout=10)
        if not m.data:
            break
        chunks.append(m.data)
        if m.reply:
            await nc.publish(m.reply, b"")
    await sub.unsubscribe()
    return answer, b"".join(chunks)


async def restore(nc, stream: str, config: dict, data: bytes, chunk: int = 64 * 1024) -> dict:
    """Sends `data` to a restore of `stream`; the final answer (a stream create response)."""
    answer = await js_api(nc, f"STREAM.RESTORE.{stream}", {"config": config})
    assert "error" not in answer, answer
    for i in range(0, len(data), chunk):
        for attempt in range(10):
            try:
                ack = await nc.request(answer["deliver_subject"], data[i:i + chunk], timeout=5)
                break
            except nats.errors.NoRespondersError:
                # A nats-server 2.15.1 cluster's restore subscription is on the stream's leader
                # and its interest may not have reached this node yet (seen once in ten runs).
                if i > 0 or attempt == 9:
                    raise
                await asyncio.sleep(0.2)
        assert ack.data == b"", ack.data
    return json.loads((await nc.request(answer["deliver_subject"], b"", timeout=60)).data)
