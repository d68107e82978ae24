"""A three-node cluster of the server under test (nats-server or clusterd) on free loopback
ports, for the cluster tests and the suite's cluster mode (`--cluster`, see conftest.py).

Every node is a ServerProcess (always reaped on close). The cluster counts as ready when every
node reports the same JetStream meta leader on /jsz.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import time
import urllib.error
import urllib.request

import pytest

from serverproc import ServerProcess, free_port, port_in_use_exit

READY_TIMEOUT_S = 30.0


async def retry(fn, attempts: int = 60, delay: float = 0.5, seconds: float | None = None, what: str = "a request",
                retryable=lambda e: True):
    """Calls `fn` until it succeeds (bounded): requests may fail or time out while a meta or
    stream leader is being elected or moved. With `seconds`, also for at most that long, each
    call cut off at the deadline: a step that keeps failing then says which it was (`what`)
    and its last error before the suite's alarm ends the test. An error `retryable` refuses is
    raised at once (a test expecting that error)."""
    deadline = None if seconds is None else time.monotonic() + seconds
    last = None
    for _ in range(attempts):
        if deadline is not None and time.monotonic() >= deadline:
            break
        try:
            if deadline is None:
                return await fn()
            return await asyncio.wait_for(fn(), max(0.1, deadline - time.monotonic()))
        except Exception as e:  # noqa: BLE001 - any client error means "not yet"
            if not retryable(e):
                raise
            last = e
            await asyncio.sleep(delay)
    bound = f"{attempts} attempts" + ("" if seconds is None else f" or {seconds} s")
    raise AssertionError(f"{what}: still failing after {bound}: {last!r}")


async def first_fetch(cluster: "Cluster", sub, n: int, timeout: float = 5):
    """`sub.fetch(n)` on a consumer created moments ago. nats-server runs each consumer in a Raft
    group of its own and answers a pull 503 until that group has a leader (seen in CI, cluster
    mode), so for nats-server a 503 is retried (bounded). clusterd runs consumers in their
    stream's group and must not answer 503 here: its 503 fails the test."""
    from nats.js.errors import ServiceUnavailableError
    for _ in range(40):
        try:
            return await sub.fetch(n, timeout=timeout)
        except ServiceUnavailableError:
            if not cluster.is_nats_server:
                raise
            await asyncio.sleep(0.25)
    return await sub.fetch(n, timeout=timeout)


class Cluster:
    def __init__(self, binary: str, size: int = 3, name: str = "compat", extra_args: list[str] | None = None):
        """`extra_args` go to every node (e.g. `-c <accounts config>`)."""
        self._spec = (binary, size, name, extra_args or [])
        self.nodes: list[ServerProcess] = []
        self._make_nodes()

    def _make_nodes(self) -> None:
        binary, size, name, extra_args = self._spec
        cports = [free_port() for _ in range(size)]
        routes = ",".join(f"nats://127.0.0.1:{p}" for p in cports)
        self.nodes = [ServerProcess(binary, [
            "-n", f"n{i + 1}", "-js", "-sd", "@TMP@", "--cluster_name", name,
            "--cluster", f"nats://127.0.0.1:{cp}", "--routes", routes] + extra_args) for i, cp in enumerate(cports)]

    # Attempts of `start` when a node could not bind a port another process took meanwhile.
    START_ATTEMPTS = 3

    def start(self) -> None:
        for attempt in range(1, self.START_ATTEMPTS + 1):
            try:
                for n in self.nodes:
                    n.start()
                self.wait_meta_leader()
                return
            except BaseException as e:
                taken = isinstance(e, RuntimeError) and any(port_in_use_exit(n.stderr_text()) for n in self.nodes)
                self.close()
                if not taken or attempt == self.START_ATTEMPTS:
                    raise
                self._make_nodes()  # every node on fresh ports (the route list names them all)

    def warm_up(self) -> None:
        """Creates and deletes one R3 stream (retried, bounded): a cluster whose nodes agree on a
        meta leader can still time out the very first create (seen with nats-server)."""
        import asyncio
        import concurrent.futures

        async def attempt() -> None:
            import nats
            nc = await nats.connect(self.nodes[0].url, allow_reconnect=False, connect_timeout=2)
            try:
                js = nc.jetstream(timeout=3)
                await js.add_stream(name="COMPAT_WARMUP", subjects=["compat.warmup"], num_replicas=len(self.nodes))
                await js.delete_stream("COMPAT_WARMUP")
            finally:
                await nc.close()

        deadline = time.monotonic() + READY_TIMEOUT_S
        with concurrent.futures.ThreadPoolExecutor(1) as pool:  # no event loop of a test here
            while True:
                try:
                    return pool.submit(asyncio.run, attempt()).result()
                except Exception:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.2)

    def jsz(self, node: ServerProcess) -> dict:
        with urllib.request.urlopen(node.monitor_url + "/jsz", timeout=2) as r:
            return json.loads(r.read())

    def wait_meta_leader(self, nodes: list[ServerProcess] | None = None) -> str:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            try:
                leaders = {self.jsz(n).get("meta_cluster", {}).get("leader") for n in (nodes or self.nodes)}
                if len(leaders) == 1 and None not in leaders and "" not in leaders:
                    return leaders.pop()
            except OSError:
                pass
            time.sleep(0.2)
        raise TimeoutError("no JetStream meta leader agreed on by every node")

    @property
    def is_nats_server(self) -> bool:
        """The nodes run the real nats-server (not clusterd)."""
        return "nats-server" in self._spec[0].rsplit("/", 1)[-1]

    def node(self, name: str) -> ServerProcess:
        return self.nodes[int(name[1:]) - 1]

    def close(self) -> None:
        # SIGTERM every node first so they shut down together, then reap each (close waits,
        # escalates to SIGKILL after its bound and removes the node's files).
        for n in self.nodes:
            if n.proc is not None and n.proc.poll() is None:
                n.proc.send_signal(signal.SIGTERM)
        errors = []
        for n in self.nodes:
            try:
                n.close()
            except Exception as e:  # keep reaping the others
                errors.append(e)
        if errors:
            raise errors[0]


class RoundRobinNodes:
    """Stands in for the single `js_server` in cluster mode: every read of `url`, `port` or
    `monitor_url` names the next node, so each new connection of a test lands on another node
    than the one before it (stream admin, data and raw connections end up on different nodes)."""

    def __init__(self, cluster: Cluster):
        self.cluster = cluster
        self._next = 0

    def next_node(self) -> ServerProcess:
        n = self.cluster.nodes[self._next % len(self.cluster.nodes)]
        self._next += 1
        return n

    @property
    def url(self) -> str:
        return self.next_node().url

    @property
    def port(self) -> int:
        return self.next_node().port

    @property
    def monitor_url(self) -> str:
        return self.next_node().monitor_url


def node_name(c: Cluster, n: ServerProcess) -> str:
    """The server name a node was started with (`-n`)."""
    return n.extra_args[n.extra_args.index("-n") + 1]


def print_decisions(c: Cluster) -> None:
    """What each node decided and the state of each running node (pytest shows it only when
    the test failed)."""
    for n in c.nodes:
        lines = [ln for ln in n.stderr_text().splitlines()
                 if "JetStream cluster" in ln or "Stream '" in ln or "[WRN]" in ln or "[ERR]" in ln]
        print(f"---- {node_name(c, n)}\n" + "\n".join(lines[-40:]))
        if n.proc is not None and n.proc.poll() is None:
            print(node_state(n))


def _monitor_get(n: ServerProcess, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(n.monitor_url + path, timeout=2) as r:
            return r.status, r.read().decode(errors="replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")


def node_state(n: ServerProcess) -> str:
    """A running node's state from its monitoring port, one line each: readiness, routes, and
    per stream its messages, Raft state (clusterd) or cluster view (nats-server), consumers."""
    out = []
    try:
        status, body = _monitor_get(n, "/healthz")
        out.append(f"  healthz {status} {body.strip()[:300]}")
        routes = json.loads(_monitor_get(n, "/routez")[1]).get("routes") or []
        out.append("  routes " + ", ".join(f"{r.get('remote_name') or r.get('remote_id')}@{r.get('ip')}:{r.get('port')}"
                                           for r in routes))
        jsz = json.loads(_monitor_get(n, "/jsz?consumers=true")[1])
        for acc in jsz.get("account_details") or []:
            for s in acc.get("stream_detail") or []:
                st = s.get("state", {})
                consumers = [{"name": ci.get("name"), "delivered": ci.get("delivered", {}).get("stream_seq"),
                              "ack_floor": ci.get("ack_floor", {}).get("stream_seq"), "pending": ci.get("num_pending"),
                              "ack_pending": ci.get("num_ack_pending"), "waiting": ci.get("num_waiting")}
                             for ci in s.get("consumer_detail") or []]
                out.append(f"  stream {acc.get('name')} > {s.get('name')} seqs {st.get('first_seq')}..{st.get('last_seq')} "
                           f"raft {json.dumps(s.get('raft') or s.get('cluster'))} consumers {json.dumps(consumers)}")
    except (OSError, ValueError) as e:
        out.append(f"  (monitoring: {e!r})")
    return "\n".join(out)


@contextlib.contextmanager
def started_cluster(binary: str, size: int = 3, name: str = "compat", extra_args: list[str] | None = None):
    """A started `Cluster`, closed on exit (every node reaped, even on failure) after printing
    what each node decided (pytest shows it only when the test failed)."""
    c = Cluster(binary, size=size, name=name, extra_args=extra_args)
    try:
        c.start()
        yield c
    finally:
        print_decisions(c)
        c.close()


def cluster_fixture(name: str, size: int = 3, extra_args=None, clusterd_only: str | None = None,
                    alarm_s: int | None = None):
    """A pytest fixture `cluster`: `started_cluster` of `size` nodes of the server under test
    named `name`. `extra_args(tmp_path)` gives arguments for every node (e.g. a config file
    written there); `clusterd_only`: skip against nats-server, with this reason; `alarm_s`: a
    longer per-test alarm than the suite's (its hard timeout still applies)."""
    @pytest.fixture
    def cluster(server_binary: str, server_kind: str, tmp_path):
        if clusterd_only and server_kind != "clusterd":
            pytest.skip(clusterd_only)
        if alarm_s:
            signal.alarm(alarm_s)
        with started_cluster(server_binary, size, name, extra_args(tmp_path) if extra_args else None) as c:
            yield c
    return cluster
