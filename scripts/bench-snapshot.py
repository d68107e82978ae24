#!/usr/bin/env python3
"""Stream snapshot or restore throughput against one server (`make bench`, section `snapshot`).

Fills a fresh file stream with --mb MiB of 1 KiB messages (random bytes, seeded), then times a
`$JS.API.STREAM.SNAPSHOT` to the end of its archive (every chunk acknowledged), or, with
--restore, deletes the stream and times a `$JS.API.STREAM.RESTORE` of that archive to its
final answer. Prints `RESULT mb_per_s=<message MiB per second> seconds=<s> archive_bytes=<n>`.
The client is nats-py: at these rates it can be the limit, for both servers alike.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import random
import time

import nats


async def fill(nc, js, stream: str, mb: int) -> int:
    await js.add_stream(name=stream, subjects=[f"{stream}.>"])
    rnd = random.Random(7)
    n = mb * 1024
    for i in range(n):
        await nc.publish(f"{stream}.{i % 16}", rnd.randbytes(1024))
        if i % 4096 == 0:
            await nc.flush()
    await nc.flush()
    deadline = time.monotonic() + 300
    while (await js.stream_info(stream)).state.messages < n:
        if time.monotonic() > deadline:
            raise SystemExit("the stream did not fill")
        await asyncio.sleep(0.1)
    return n


async def snapshot(nc, stream: str) -> bytes:
    inbox = nc.new_inbox()
    sub = await nc.subscribe(inbox, pending_bytes_limit=512 * 1024 * 1024)
    answer = json.loads((await nc.request(f"$JS.API.STREAM.SNAPSHOT.{stream}",
                                          json.dumps({"deliver_subject": inbox}).encode(), timeout=10)).data)
    if "error" in answer:
        raise SystemExit(f"snapshot refused: {answer}")
    chunks = []
    while True:
        m = await sub.next_msg(timeout=30)
        if not m.data:
            break
        chunks.append(m.data)
        if m.reply:
            await nc.publish(m.reply, b"")
    await sub.unsubscribe()
    return b"".join(chunks)


async def restore(nc, stream: str, config: dict, data: bytes) -> None:
    answer = json.loads((await nc.request(f"$JS.API.STREAM.RESTORE.{stream}", json.dumps({"config": config}).encode(),
                                          timeout=10)).data)
    if "error" in answer:
        raise SystemExit(f"restore refused: {answer}")
    chunk = 128 * 1024
    for i in range(0, len(data), chunk):
        await nc.request(answer["deliver_subject"], data[i:i + chunk], timeout=30)
    done = json.loads((await nc.request(answer["deliver_subject"], b"", timeout=300)).data)
    if "error" in done:
        raise SystemExit(f"restore failed: {done}")


async def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--url", required=True)
    p.add_argument("--mb", type=int, default=64)
    p.add_argument("--restore", action="store_true")
    a = p.parse_args()
    nc = await nats.connect(a.url)
    js = nc.jetstream(timeout=30)
    stream = f"SNAPB{random.randrange(1 << 30)}"
    await fill(nc, js, stream, a.mb)
    config = json.loads((await nc.request(f"$JS.API.STREAM.INFO.{stream}", b"", timeout=10)).data)["config"]
    start = time.monotonic()
    data = await snapshot(nc, stream)
    took = time.monotonic() - start
    if a.restore:
        await js.delete_stream(stream)
        start = time.monotonic()
        await restore(nc, stream, config, data)
        took = time.monotonic() - start
    await js.delete_stream(stream)
    await nc.close()
    print(f"RESULT mb_per_s={a.mb / took:.1f} seconds={took:.2f} archive_bytes={len(data)}")


asyncio.run(main())
