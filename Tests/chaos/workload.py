"""The client workload: publishers, durable pull consumers and KV compare-and-set writers,
each on its own connection to a random node, switching to another node on any failure.
Everything they see is appended to a `History` that the checker reads afterwards.

Message ids are unique per run ("p<publisher>-<n>"); the payload is the id, so any message
read back names the publish it came from (a message with an unknown id is a phantom).
"""
from __future__ import annotations

import asyncio
import json
import random
import time
from dataclasses import asdict, dataclass, field

import nats
from nats.js.api import AckPolicy, ConsumerConfig

PUB_TIMEOUT = 2.0
RETRIES = 3  # attempts per message id before moving on (same Nats-Msg-Id each time)
FETCH_BATCH = 20  # per pull request; every message of a batch is acked at once (`_ack_batch`)
ACK_TIMEOUT = 1.0


@dataclass
class PubOp:
    id: str
    stream: str
    node: str
    t0: float
    t1: float
    outcome: str         # ack | dup | error | timeout
    seq: int | None = None
    detail: str = ""


@dataclass
class Delivery:
    stream: str
    consumer: str
    id: str
    seq: int
    delivered: int       # the server's delivery count for this message
    t: float
    acked: bool          # the ack was confirmed by the server (ack_sync returned)
    t_ack: float = 0.0
    cseq: int = 0        # the consumer sequence the server gave it (which state it came from)
    via: str = ""        # the node the worker was connected to
    t_recv: float = 0.0  # when it reached the client (`t` is when the worker got to it)


@dataclass
class KVOp:
    key: str
    value: str
    expected: int        # the revision the update was conditioned on (0: create)
    t0: float
    t1: float
    outcome: str         # ok | rejected | indeterminate
    revision: int | None = None
    detail: str = ""


@dataclass
class History:
    start: float = field(default_factory=time.monotonic)
    pubs: list[PubOp] = field(default_factory=list)
    deliveries: list[Delivery] = field(default_factory=list)
    kv: list[KVOp] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)

    def now(self) -> float:
        return time.monotonic() - self.start

    def count_error(self, e: BaseException) -> str:
        name = type(e).__name__
        self.errors[name] = self.errors.get(name, 0) + 1
        return f"{name}: {str(e)[:120]}"


def write_history(h: History, path: str) -> None:
    """The whole history as JSON lines ({"pub"|"delivery"|"kv": fields}), so a failed run's
    violations can be checked one by one afterwards (the report keeps only the first 50)."""
    with open(path, "w") as f:
        for kind, items in (("pub", h.pubs), ("delivery", h.deliveries), ("kv", h.kv)):
            for x in items:
                f.write(json.dumps({kind: asdict(x)}) + "\n")


def read_history(path: str) -> History:
    """The inverse of `write_history` (errors are not kept)."""
    h = History()
    types = {"pub": (PubOp, h.pubs), "delivery": (Delivery, h.deliveries), "kv": (KVOp, h.kv)}
    with open(path) as f:
        for line in f:
            (kind, fields), = json.loads(line).items()
            cls, into = types[kind]
            into.append(cls(**fields))
    return h


async def _quiet(*_a, **_k) -> None:
    return None


async def connect_any(urls: dict[str, str], rng: random.Random, avoid: str | None = None):
    """A connection to a random node (not `avoid` when another one answers)."""
    names = list(urls)
    rng.shuffle(names)
    if avoid in names and len(names) > 1:
        names.remove(avoid)
        names.append(avoid)
    for name in names:
        try:
            nc = await asyncio.wait_for(nats.connect(
                urls[name], allow_reconnect=False, connect_timeout=1, max_reconnect_attempts=0,
                error_cb=_quiet, disconnected_cb=_quiet, closed_cb=_quiet,
                ping_interval=1, max_outstanding_pings=2), 3)
            return name, nc
        except Exception:  # noqa: BLE001 - this node is down/paused/refusing: try the next
            continue
    return None, None


async def _close(nc) -> None:
    if nc is None:
        return
    try:
        await asyncio.wait_for(nc.close(), 2)
    except Exception:  # noqa: BLE001
        pass


class Workload:
    def __init__(self, urls: dict[str, str], streams: list[str], seed: int, hist: History,
                 publishers: int = 4, consumers_per_stream: int = 1, kv_writers: int = 0,
                 kv_bucket: str = "chaoskv", kv_keys: int = 3, pub_interval: float = 0.0):
        self.urls, self.streams, self.seed, self.h = urls, streams, seed, hist
        self.publishers, self.consumers_per_stream = publishers, consumers_per_stream
        self.kv_writers, self.kv_bucket, self.kv_keys = kv_writers, kv_bucket, kv_keys
        self.pub_interval = pub_interval
        self.stop = asyncio.Event()
        self.stop_consumers = asyncio.Event()
        self.tasks: list[asyncio.Task] = []

    def start(self) -> None:
        for i in range(self.publishers):
            self.tasks.append(asyncio.create_task(self._publisher(i)))
        for s in self.streams:
            for j in range(self.consumers_per_stream):
                self.tasks.append(asyncio.create_task(self._consumer(s, j)))
        for k in range(self.kv_writers):
            self.tasks.append(asyncio.create_task(self._kv_writer(k)))

    async def stop_publishing(self) -> None:
        self.stop.set()

    async def join(self) -> None:
        self.stop.set()
        self.stop_consumers.set()
        await asyncio.gather(*self.tasks, return_exceptions=True)

    # -- publishers -------------------------------------------------------------------------

    async def _publisher(self, idx: int) -> None:
        rng = random.Random(self.seed * 7919 + idx)
        node, nc = None, None
        n = 0
        while not self.stop.is_set():
            stream = self.streams[rng.randrange(len(self.streams))]
            mid = f"p{idx}-{n}"
            n += 1
            for _attempt in range(RETRIES):
                if self.stop.is_set():
                    break
                if nc is None:
                    node, nc = await connect_any(self.urls, rng, avoid=node)
                    if nc is None:
                        await asyncio.sleep(0.2)
                        continue
                js = nc.jetstream(timeout=PUB_TIMEOUT)
                t0 = self.h.now()
                try:
                    ack = await js.publish(f"{stream.lower()}.{idx}", mid.encode(),
                                           headers={"Nats-Msg-Id": mid}, timeout=PUB_TIMEOUT)
                    self.h.pubs.append(PubOp(mid, stream, node, t0, self.h.now(),
                                             "dup" if ack.duplicate else "ack", ack.seq))
                    break
                except Exception as e:  # noqa: BLE001 - every failure is recorded, then retried
                    timeout = isinstance(e, (asyncio.TimeoutError, nats.errors.TimeoutError))
                    self.h.pubs.append(PubOp(mid, stream, node, t0, self.h.now(),
                                             "timeout" if timeout else "error", None, self.h.count_error(e)))
                    # A stalled or failing node: go elsewhere for the retry.
                    await _close(nc)
                    nc = None
                    await asyncio.sleep(0.05)
            if self.pub_interval:
                await asyncio.sleep(self.pub_interval)
        await _close(nc)

    # -- consumers --------------------------------------------------------------------------

    async def _consumer(self, stream: str, idx: int) -> None:
        rng = random.Random(self.seed * 104729 + hash(stream) % 1000 + idx)
        durable = f"C{stream}"
        node, nc, pull = None, None, None
        while not self.stop_consumers.is_set():
            if nc is None:
                node, nc = await connect_any(self.urls, rng, avoid=node)
                if nc is None:
                    await asyncio.sleep(0.2)
                    continue
                try:
                    pull = RawPull(nc, stream, durable, self.h.now)
                    await pull.start()
                except Exception as e:  # noqa: BLE001
                    self.h.count_error(e)
                    await _close(nc)
                    nc = None
                    await asyncio.sleep(0.2)
                    continue
            try:
                got = await pull.fetch(FETCH_BATCH, timeout=1)
            except Exception as e:  # noqa: BLE001 - the connection failed: switch node
                self.h.count_error(e)
                await _close(nc)
                nc = None
                continue
            if not got:
                if self.stop.is_set() and rng.random() < 0.1:
                    await _close(nc)  # while draining, visit other nodes too
                    nc = None
                continue
            batch = []
            for t_recv, m in got:
                md = m.metadata
                d = Delivery(stream, durable, m.data.decode(errors="replace"), md.sequence.stream,
                             md.num_delivered, self.h.now(), False, cseq=md.sequence.consumer, via=node,
                             t_recv=t_recv)
                self.h.deliveries.append(d)
                batch.append((d, m))
            await self._ack_batch(batch)
        await _close(nc)

    async def _ack_batch(self, batch: list) -> None:
        """Acks every delivery of a fetch at once, each as a double ack (`ack_sync`, sent in
        order, the replies awaited together): the server confirms each one, which the checker
        needs, without one round trip per message (a durable's acks replicate through the
        stream's Raft group, ~15-40 ms each on a debug build: one at a time drained 26-60/s)."""
        async def one(d: Delivery, m) -> None:
            try:
                await m.ack_sync(timeout=ACK_TIMEOUT)
                d.acked, d.t_ack = True, self.h.now()
            except Exception as e:  # noqa: BLE001 - unconfirmed ack: may be redelivered
                self.h.count_error(e)
        await asyncio.gather(*(one(d, m) for d, m in batch))

    # -- KV compare-and-set ------------------------------------------------------------------

    async def _kv_writer(self, idx: int) -> None:
        rng = random.Random(self.seed * 31 + idx)
        node, nc, kv = None, None, None
        n = 0
        while not self.stop.is_set():
            if kv is None:
                node, nc = await connect_any(self.urls, rng, avoid=node)
                if nc is None:
                    await asyncio.sleep(0.2)
                    continue
                try:
                    kv = await nc.jetstream(timeout=2).key_value(self.kv_bucket)
                except Exception as e:  # noqa: BLE001
                    self.h.count_error(e)
                    await _close(nc)
                    nc, kv = None, None
                    await asyncio.sleep(0.2)
                    continue
            key = f"k{rng.randrange(self.kv_keys)}"
            try:
                entry = await kv.get(key)
                expected = entry.revision
            except nats.js.errors.KeyNotFoundError:
                expected = 0
            except Exception as e:  # noqa: BLE001
                self.h.count_error(e)
                await _close(nc)
                nc, kv = None, None
                continue
            value = f"w{idx}-{n}"
            n += 1
            t0 = self.h.now()
            try:
                if expected == 0:
                    rev = await kv.create(key, value.encode())
                else:
                    rev = await kv.update(key, value.encode(), last=expected)
                self.h.kv.append(KVOp(key, value, expected, t0, self.h.now(), "ok", rev))
            except nats.js.errors.KeyWrongLastSequenceError as e:
                self.h.kv.append(KVOp(key, value, expected, t0, self.h.now(), "rejected", None, str(e)[:80]))
            except Exception as e:  # noqa: BLE001 - timeouts and 503s: the write may or may not exist
                self.h.kv.append(KVOp(key, value, expected, t0, self.h.now(), "indeterminate", None,
                                      self.h.count_error(e)))
                await _close(nc)
                nc, kv = None, None
            await asyncio.sleep(0.02)
        await _close(nc)


class RawPull:
    """A durable pull consumer read with plain `CONSUMER.MSG.NEXT` requests to an inbox of its
    own, recording when each message arrived. (nats-py's `fetch` also hands out messages that
    arrived for an earlier, timed-out request, without saying when: a redelivery the server sent
    before an ack reached it could then look as if it came after the ack was confirmed.)"""

    def __init__(self, nc, stream: str, durable: str, clock):
        self.nc, self.clock = nc, clock
        self.subject = f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{durable}"
        self.inbox = nc.new_inbox()
        self.arrived: asyncio.Queue = asyncio.Queue()

    async def start(self) -> None:
        async def on_msg(m) -> None:
            self.arrived.put_nowait((self.clock(), m))
        await self.nc.subscribe(self.inbox, cb=on_msg)
        await self.nc.flush(timeout=2)

    async def request(self, batch: int, expires: float) -> None:
        """Sends one pull request for `batch` messages, expiring after `expires` seconds, without
        waiting: what it brings is in `drain()` (or a later `fetch`)."""
        req = {"batch": batch, "expires": int(expires * 1e9)}
        await self.nc.publish(self.subject, json.dumps(req).encode(), reply=self.inbox)

    def drain(self, limit: int | None = None) -> list:
        """The (arrival time, message) pairs that arrived and were not taken yet (at most
        `limit`), status messages left out."""
        out: list = []
        while not self.arrived.empty() and (limit is None or len(out) < limit):
            t, m = self.arrived.get_nowait()
            if not (m.headers and m.headers.get("Status")):
                out.append((t, m))
        return out

    async def fetch(self, batch: int, timeout: float) -> list:
        """Up to `batch` (arrival time, message): what arrived since the last call first, then
        what one request expiring after `timeout` brings. Status messages (404/408/409/503) end
        the wait; they may belong to an earlier request, which only makes this one shorter."""
        out = self.drain(batch)
        if out:
            return out
        await self.request(batch, timeout)
        deadline = time.monotonic() + timeout
        while len(out) < batch:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                t, m = await asyncio.wait_for(self.arrived.get(), left)
            except asyncio.TimeoutError:
                break
            if m.headers and m.headers.get("Status"):
                if m.headers.get("Status") != "100":  # idle heartbeat
                    break
                continue
            out.append((t, m))
        return out


def ack_seqs(ack_subject: str) -> tuple[int, int, int]:
    """(stream seq, delivery count, consumer seq) of a `$JS.ACK.<s>.<c>.<n>.<sseq>.<cseq>...` subject."""
    t = ack_subject.split(".")
    return int(t[5]), int(t[4]), int(t[6])


def consumer_config() -> ConsumerConfig:
    """The workload's durable: explicit acks, quick redelivery so failovers show up."""
    return ConsumerConfig(ack_policy=AckPolicy.EXPLICIT, ack_wait=3, max_ack_pending=1000)
