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
import os
import sys
import time

import nats

# The compatibility suite's snapshot and restore client, shared.
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "Tests", "compat"))
from natsutil import restore, snapshot  # noqa: E402


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
    _, data = await snapshot(nc, stream)
    took = time.monotonic() - start
    if a.restore:
        await js.delete_stream(stream)
        start = time.monotonic()
        done = await restore(nc, stream, config, data, chunk=128 * 1024)
        if "error" in done:
            raise SystemExit(f"restore failed: {done}")
        took = time.monotonic() - start
    await js.delete_stream(stream)
    await nc.close()
    print(f"RESULT mb_per_s={a.mb / took:.1f} seconds={took:.2f} archive_bytes={len(data)}")


asyncio.run(main())
