"""N server child processes (clusterd or nats-server) behind route fault proxies.

Every node gets its own store directory and free ports (client, monitoring, private route
listener, proxied route address). Nodes can be killed (-9), paused (SIGSTOP/SIGCONT),
restarted with their data or with a wiped data directory, and partitioned through the proxies.
`close()` reaps every child; `ChaosCluster` is also an async context manager, and an atexit
hook kills whatever is still running if the harness itself dies.
"""
from __future__ import annotations

import asyncio
import atexit
import json
import os
import shlex
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request

from faultproxy import LinkTable, RouteProxy, free_port
from serverproc import freeze

_LIVE: set[subprocess.Popen] = set()


def _reap_all() -> None:
    for p in list(_LIVE):
        try:
            p.kill()
            p.wait(5)
        except Exception:  # noqa: BLE001 - best effort at interpreter exit
            pass


atexit.register(_reap_all)


class Node:
    def __init__(self, name: str, root: str):
        self.name = name
        self.dir = os.path.join(root, name)
        self.store = os.path.join(self.dir, "store")
        os.makedirs(self.dir, exist_ok=True)
        self.port = free_port()
        self.monitor_port = free_port()
        self.route_port = free_port()   # where the node listens for routes
        self.proxy_port = free_port()   # what the others dial (advertised)
        self.proc: subprocess.Popen | None = None
        self.paused = False
        self.starts = 0

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, n: int = 3000) -> str:
        try:
            with open(os.path.join(self.dir, "stderr.log"), errors="replace") as f:
                return f.read()[-n:]
        except OSError:
            return ""


class ChaosCluster:
    """`kind` is "clusterd" or "nats-server"; `binary` the executable."""

    def __init__(self, kind: str, binary: str, size: int = 3, name: str = "chaos", power_cut: bool = False,
                 segment_bytes: int | None = None, test_clock: bool = False, env: dict[str, str] | None = None):
        self.kind, self.binary, self.size, self.cluster_name = kind, binary, size, name
        # clusterd's test-only power-loss mode: SIGPWR drops what a node had not fsync'd.
        self.power_cut_mode = power_cut and kind == "clusterd"
        # Extra environment of every clusterd child (test-only settings, docs/chaos.md).
        self.env: dict[str, str] = dict(env or {})
        if self.power_cut_mode:
            self.env["CLUSTERD_TEST_POWER_CUT"] = "1"
        if segment_bytes and kind == "clusterd":
            # Small stream segments, so that a short run seals some (the `corrupt` kind's target).
            self.env["CLUSTERD_STREAM_SEGMENT_BYTES"] = str(segment_bytes)
        # clusterd's test-only clock offset: each node reads <node dir>/clock_offset_ms on SIGURG.
        self.test_clock = test_clock and kind == "clusterd"
        self.root = tempfile.mkdtemp(prefix="chaos-")
        self.nodes = [Node(f"n{i + 1}", self.root) for i in range(size)]
        self.links = LinkTable()
        self.pids: dict[int, str] = {}
        self.proxies: list[RouteProxy] = []
        self.events: list[str] = []

    def node(self, name: str) -> Node:
        return next(n for n in self.nodes if n.name == name)

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self, ready_timeout: float = 60) -> None:
        for n in self.nodes:
            p = RouteProxy(n.name, n.route_port, self.links, self.pids)
            await p.start(n.proxy_port)
            self.proxies.append(p)
        for n in self.nodes:
            self._spawn(n)
        await self.wait_meta_leader(ready_timeout)

    def _args(self, n: Node) -> list[str]:
        routes = ",".join(f"nats://127.0.0.1:{m.proxy_port}" for m in self.nodes if m is not n)
        args = [self.binary, "-a", "127.0.0.1", "-p", str(n.port), "-m", str(n.monitor_port),
                "-n", n.name, "-js", "-sd", n.store, "--cluster_name", self.cluster_name,
                "--cluster", f"nats://127.0.0.1:{n.route_port}",
                "--cluster_advertise", f"127.0.0.1:{n.proxy_port}", "--routes", routes]
        # E.g. "-c lax.conf" to run the schedule against a configuration (an opt-in mode).
        return args + shlex.split(os.environ.get("CHAOS_CLUSTERD_ARGS", ""))

    def _spawn(self, n: Node) -> None:
        assert not n.alive
        err = open(os.path.join(n.dir, "stderr.log"), "ab")
        env = dict(os.environ, **self.env) if self.env else None
        if self.test_clock:
            env = dict(env or os.environ, CLUSTERD_TEST_CLOCK=self._clock_file(n))
        try:
            n.proc = subprocess.Popen(self._args(n), stdout=subprocess.DEVNULL, stderr=err,
                                      stdin=subprocess.DEVNULL, cwd=n.dir, env=env)
        finally:
            err.close()
        _LIVE.add(n.proc)
        self.pids[n.proc.pid] = n.name
        n.paused = False
        n.starts += 1

    def _reap(self, n: Node) -> None:
        if n.proc is None:
            return
        if n.paused:
            os.kill(n.proc.pid, signal.SIGCONT)
        if n.proc.poll() is None:
            n.proc.kill()
        n.proc.wait()
        _LIVE.discard(n.proc)
        self.pids.pop(n.proc.pid, None)
        n.proc = None
        n.paused = False

    async def close(self) -> None:
        for n in self.nodes:
            self._reap(n)
        for p in self.proxies:
            await p.close()
        if os.environ.get("CHAOS_KEEP_DIRS") != "1":
            shutil.rmtree(self.root, ignore_errors=True)

    async def __aenter__(self) -> "ChaosCluster":
        try:
            await self.start()
        except BaseException:
            await self.close()
            raise
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    # -- faults ----------------------------------------------------------------------------

    def kill(self, name: str) -> None:
        self._reap(self.node(name))

    def kill_all(self) -> None:
        """kill -9 of every node, signalled together before any is reaped."""
        for n in self.nodes:
            if n.alive:
                os.kill(n.proc.pid, signal.SIGKILL)
        for n in self.nodes:
            self._reap(n)

    def power_cut(self, names: list[str]) -> None:
        """SIGPWR to each node (signalled together): in power-cut mode a node undoes every
        write it had not fsync'd and dies by SIGKILL. A node that does not die is killed."""
        assert self.power_cut_mode, "power cuts need the cluster started with power_cut=True"
        live = [self.node(x) for x in names if self.node(x).alive]
        for n in live:
            if n.paused:
                os.kill(n.proc.pid, signal.SIGCONT)
                n.paused = False
            os.kill(n.proc.pid, signal.SIGPWR)
        for n in live:
            try:
                n.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.events.append(f"{n.name} survived SIGPWR; killed")
            self._reap(n)

    def corrupt_segment(self, name: str, stream: str, rng, running: bool = False, active: bool = False) -> str | None:
        """Flips 4 bytes in one *sealed* segment of `stream`'s message log on a stopped node
        (a random one of all but the newest segment, whose tail open CRC-checks anyway; the
        newest only when nothing is sealed yet). Returns what was done, or None when the node
        holds no such segment. `running`: the node runs (bit rot under a live server; only
        sealed segments, which it no longer writes, are touched then). `active`: the newest
        segment instead (the one the node appends to; only while nothing is published)."""
        n = self.node(name)
        assert running or not n.alive, "corrupt only a stopped node's files"
        for root, _dirs, files in os.walk(n.store):
            if not (root.endswith(os.path.join(stream, "msgs")) and files):
                continue
            segs = sorted(f for f in files if f.endswith(".seg"))
            if not segs:
                continue
            sealed = segs[:-1]
            if running and not sealed and not active:
                return None
            seg = segs[-1] if active else rng.choice(sealed) if sealed else segs[-1]
            path = os.path.join(root, seg)
            size = os.path.getsize(path)
            if size < 64:
                return None
            offsets = sorted(rng.randrange(32, size) for _ in range(4))
            with open(path, "r+b") as f:
                for off in offsets:
                    f.seek(off)
                    b = f.read(1)
                    f.seek(off)
                    f.write(bytes([b[0] ^ 0xFF]))
            which = ("active" if active else f"sealed ({len(sealed)} sealed)") if sealed else "active (none sealed yet)"
            return f"{os.path.relpath(path, n.store)} {which}, {size} bytes, flipped at {offsets}"
        return None

    def _clock_file(self, n: Node) -> str:
        return os.path.join(n.dir, "clock_offset_ms")

    def set_clock(self, name: str, offset_ms: int) -> None:
        """Sets a node's wall-clock offset (a clock jump; 0 puts it right again). The file is
        written whether the node runs or not (a restarted node reads it at start); a running
        node re-reads it on SIGURG (queued while it is paused)."""
        assert self.test_clock, "clock jumps need the cluster started with test_clock=True"
        n = self.node(name)
        tmp = self._clock_file(n) + ".tmp"
        with open(tmp, "w") as f:
            f.write(f"{offset_ms}\n")
        os.replace(tmp, self._clock_file(n))
        if n.alive:
            os.kill(n.proc.pid, signal.SIGURG)

    def restart(self, name: str, wipe: bool = False) -> None:
        n = self.node(name)
        self._reap(n)
        if wipe:
            shutil.rmtree(n.store, ignore_errors=True)
        self._spawn(n)

    def pause(self, name: str) -> None:
        n = self.node(name)
        if n.alive and not n.paused:
            freeze(n.proc.pid)
            n.paused = True

    def resume(self, name: str) -> None:
        n = self.node(name)
        if n.alive and n.paused:
            os.kill(n.proc.pid, signal.SIGCONT)
            n.paused = False

    def partition(self, blocked: set[tuple[str, str]]) -> None:
        self.links.set(blocked)

    def heal(self) -> None:
        self.links.heal()
        for n in self.nodes:
            self.resume(n.name)
            if not n.alive:
                self._spawn(n)

    # -- observation -----------------------------------------------------------------------

    def jsz(self, n: Node, streams: bool = False) -> dict:
        q = "?streams=true" if streams else ""
        with urllib.request.urlopen(f"http://127.0.0.1:{n.monitor_port}/jsz{q}", timeout=2) as r:
            return json.loads(r.read())

    async def wait_meta_leader(self, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            try:
                leaders = {(self.jsz(n).get("meta_cluster") or {}).get("leader") for n in self.nodes if n.alive}
                if len(leaders) == 1 and None not in leaders and "" not in leaders:
                    return leaders.pop()
                last = leaders
            except OSError as e:
                last = e
            await asyncio.sleep(0.2)
        raise TimeoutError(f"no meta leader agreed by all nodes after {timeout}s: {last}")

    def local_stream_state(self, n: Node, stream: str) -> dict | None:
        """The node's own copy of `stream` (its /jsz, not the leader's answer)."""
        d = self.jsz(n, streams=True)
        for acc in d.get("account_details") or []:
            for s in acc.get("stream_detail") or []:
                if s.get("name") == stream:
                    return s.get("state")
        return None


def run_scenario(binary: str, name: str, scenario, size: int = 3, timeout: float = 150, **options) -> None:
    """Runs `await scenario(cluster)` against a fresh clusterd `ChaosCluster` (`options` go to
    its constructor) within `timeout` seconds; the cluster is always closed and reaped."""
    async def main() -> None:
        cluster = ChaosCluster("clusterd", binary, size, name=name, **options)
        try:
            await cluster.start()
            await asyncio.wait_for(scenario(cluster), timeout)
        finally:
            await cluster.close()
    asyncio.run(main())
