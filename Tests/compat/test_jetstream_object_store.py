"""Object Store buckets through nats-py (stream OBJ_<bucket>: chunks on $O.<bucket>.C.<nuid>,
metadata on $O.<bucket>.M.<name>, rolled up per object), proven against nats-server 2.15.1 and
clusterd: a multi-chunk object goes in and comes back whole with its SHA-256 digest, an
overwrite or a delete purges the old chunks, `list` and `watch` see the metadata, a sealed
bucket refuses writes (10109), and deleting the bucket removes its stream."""
from __future__ import annotations

import asyncio
import base64
import hashlib
import random

import nats.js.errors
import pytest

pytestmark = pytest.mark.jetstream

CHUNK = 128 * 1024  # nats-py's default chunk size


async def test_objectStore_putGetOverwriteDelete(js, uniq):
    obs = await js.create_object_store(uniq)
    data = random.Random(7).randbytes(3 * CHUNK + 77)
    info = await obs.put("model.bin", data)
    assert (info.size, info.chunks) == (len(data), 4)
    assert info.digest == "SHA-256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).decode()
    got = await obs.get("model.bin")
    assert got.data == data and got.info.size == len(data)
    cfg = (await js.stream_info(f"OBJ_{uniq}")).config
    assert sorted(cfg.subjects) == sorted([f"$O.{uniq}.C.>", f"$O.{uniq}.M.>"])
    assert cfg.allow_rollup_hdrs is True
    # Four chunks and the metadata.
    assert (await js.stream_info(f"OBJ_{uniq}")).state.messages == 5
    # An overwrite replaces the metadata (rollup) and purges the old version's chunks.
    await obs.put("model.bin", b"v2" * 1000)
    assert (await obs.get("model.bin")).data == b"v2" * 1000
    assert (await js.stream_info(f"OBJ_{uniq}")).state.messages == 2
    assert [o.name for o in await obs.list()] == ["model.bin"]
    await obs.delete("model.bin")
    with pytest.raises(nats.js.errors.ObjectNotFoundError):
        await obs.get("model.bin")
    # Only the deleted marker (metadata) is left.
    assert (await js.stream_info(f"OBJ_{uniq}")).state.messages == 1


async def test_objectStore_watchSealAndDeleteBucket(js, uniq):
    obs = await js.create_object_store(uniq)
    await obs.put("a.txt", b"hello")
    watcher = await obs.watch(include_history=True)
    first = await asyncio.wait_for(watcher.updates(timeout=3), 5)
    assert first is not None and first.name == "a.txt" and first.size == 5
    await obs.seal()
    assert (await obs.status()).sealed is True
    with pytest.raises(nats.js.errors.BadRequestError) as e:
        await obs.put("b.txt", b"x")
    assert e.value.err_code == 10109
    assert (await obs.get("a.txt")).data == b"hello"
    await js.delete_object_store(uniq)
    with pytest.raises(nats.js.errors.NotFoundError):
        await js.stream_info(f"OBJ_{uniq}")


async def test_objectStore_replicatedBucket(js, uniq, js_replicas):
    """In cluster mode an R3 bucket (its chunks, rollups and purges go through the stream's
    Raft group); on one node R1."""
    obs = await js.create_object_store(uniq, replicas=js_replicas)
    data = random.Random(11).randbytes(CHUNK + 5)
    await obs.put("x", data)
    await obs.put("x", data[::-1])
    assert (await obs.get("x")).data == data[::-1]
    info = await js.stream_info(f"OBJ_{uniq}")
    assert info.config.num_replicas == js_replicas
    # The second version's two chunks and the metadata.
    assert info.state.messages == 3
