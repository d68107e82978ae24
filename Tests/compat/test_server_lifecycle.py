"""Process-level drop-in behaviour: startup lines, flag spellings, reconnect across restarts,
fatal errors. Every process started here is reaped in a finally block."""
from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import time

import nats
import pytest

from natsutil import publish_until_received
from rawconn import RawConn
from serverproc import free_port

START_BOUND_S = 10.0


class LooseProcess:
    """A server started with arbitrary flags (no fixed -p), for flag-parsing tests."""

    def __init__(self, binary: str, args: list[str], cwd: str):
        self.stderr_path = os.path.join(cwd, "stderr.log")
        with open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen([binary] + args, stdout=subprocess.DEVNULL, stderr=err,
                                         stdin=subprocess.DEVNULL, cwd=cwd)

    def stderr(self) -> str:
        with open(self.stderr_path, errors="replace") as f:
            return f.read()

    def wait_for_line(self, pattern: str, bound_s: float = START_BOUND_S) -> re.Match:
        deadline = time.monotonic() + bound_s
        while time.monotonic() < deadline:
            m = re.search(pattern, self.stderr())
            if m:
                return m
            if self.proc.poll() is not None:
                break
            time.sleep(0.02)
        raise AssertionError(f"no line matching {pattern!r}; stderr:\n{self.stderr()[-2000:]}")

    def wait_exit(self, bound_s: float = START_BOUND_S) -> int:
        return self.proc.wait(bound_s)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def loose(server_binary, tmp_path):
    started = []

    def _start(args: list[str]) -> LooseProcess:
        p = LooseProcess(server_binary, args, str(tmp_path))
        started.append(p)
        return p

    try:
        yield _start
    finally:
        for p in started:
            p.stop()


def test_startup_printsListeningAndReadyLines(server):
    text = "\n".join(server.startup_lines)
    assert f"Listening for client connections on 127.0.0.1:{server.port}" in text
    assert "Server is ready" in text
    assert text.index("Listening for client connections") < text.index("Server is ready")


def test_portMinusOne_picksFreePort_andLogsIt(loose):
    p = loose(["-a", "127.0.0.1", "--port", "-1", "-m", str(free_port())])
    m = p.wait_for_line(r"Listening for client connections on 127\.0\.0\.1:(\d+)")
    port = int(m.group(1))
    assert port > 0
    p.wait_for_line("Server is ready")
    with RawConn(port) as c:
        assert c.info["port"] == port
        c.connect()


def test_storeDir_equalsSpelling_enablesJetStream(loose, tmp_path):
    port = free_port()
    store = tmp_path / "sd"
    p = loose(["-a=127.0.0.1", "-p=%d" % port, "-js", "-sd=%s" % store])
    p.wait_for_line("Server is ready")
    with RawConn(port) as c:
        assert c.info.get("jetstream") is True


def test_varz_servedRightAfterStart(loose):
    port, mport = free_port(), free_port()
    p = loose(["-a", "127.0.0.1", "-p", str(port), "-m", str(mport)])
    p.wait_for_line("Server is ready")
    import urllib.request
    deadline = time.monotonic() + 1.0
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{mport}/varz", timeout=1) as r:
                assert json.loads(r.read())["port"] == port
                break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def test_portInUse_isFatal_nonZeroExit(loose):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        p = loose(["-a", "127.0.0.1", "-p", str(port)])
        rc = p.wait_exit()
    assert rc != 0
    assert "[FTL]" in p.stderr()


def test_missingConfigFile_nonZeroExit(loose, tmp_path):
    p = loose(["-c", str(tmp_path / "does-not-exist.conf")])
    assert p.wait_exit() != 0


def test_sigterm_exitsPromptly(loose):
    port = free_port()
    p = loose(["-a", "127.0.0.1", "-p", str(port)])
    p.wait_for_line("Server is ready")
    t0 = time.monotonic()
    p.proc.send_signal(signal.SIGTERM)
    rc = p.wait_exit(10)
    assert time.monotonic() - t0 < 5
    assert rc == 0


@pytest.mark.parametrize("hard", [False, True], ids=["sigterm", "sigkill"])
async def test_client_reconnectsAfterServerRestart_andResubscribes(restartable_server, hard):
    srv = restartable_server
    disconnected, reconnected = asyncio.Event(), asyncio.Event()

    async def on_disc():
        disconnected.set()

    async def on_reco():
        reconnected.set()

    nc = await nats.connect(srv.url, reconnect_time_wait=0.1, max_reconnect_attempts=100,
                            disconnected_cb=on_disc, reconnected_cb=on_reco, connect_timeout=2)
    try:
        sub = await nc.subscribe("reco.t")
        await nc.flush()
        await asyncio.to_thread(srv.restart, hard)
        await asyncio.wait_for(disconnected.wait(), 10)
        await asyncio.wait_for(reconnected.wait(), 10)
        other = await nats.connect(srv.url, allow_reconnect=False)
        try:
            # the subscription was replayed on reconnect, so a publish from elsewhere arrives
            msg = await publish_until_received(other, "reco.t", b"after", sub, attempts=17, wait_s=0.3)
            assert msg is not None, "no delivery after reconnect"
            assert msg.data == b"after"
        finally:
            await other.close()
        assert nc.stats["reconnects"] >= 1
    finally:
        await nc.close()


def test_sigusr2_lameDuck_infoLdm_refusesNew_closesClients_exits0(make_server, tmp_path):
    conf = tmp_path / "ldm.conf"
    # the Helm chart's settings; nats-server rejects lame_duck_duration below 30 s
    conf.write_text('lame_duck_duration: "30s"\nlame_duck_grace_period: "1s"\n')
    srv = make_server(["-c", str(conf)])
    clients = [RawConn(srv.port) for _ in range(2)]
    try:
        for c in clients:
            c.connect(b'CONNECT {"verbose":false,"protocol":1}\r\n')
            c.read_until(b"\r\n")  # protocol-1 clients get an extra INFO after the first PONG
        t0 = time.monotonic()
        srv.proc.send_signal(signal.SIGUSR2)
        for c in clients:
            line = c.read_until(b"\r\n", timeout=2)
            assert line.startswith(b"INFO ") and json.loads(line[5:])["ldm"] is True, line
        time.sleep(0.3)
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", srv.port), timeout=1).close()
        for c in clients:
            rest = c.until_closed(timeout=10)
            assert b"-ERR" not in rest, rest
        assert srv.proc.wait(15) == 0
        assert time.monotonic() - t0 < 15
        assert "Entering lame duck mode" in srv.stderr_text()
    finally:
        for c in clients:
            c.close()


def test_harness_freePort_neverHandsOutAPortTwice():
    # Two nodes of one cluster given the same port made one of them die on bind (see serverproc).
    ports = [free_port() for _ in range(300)]
    assert len(set(ports)) == len(ports)


def test_harness_startFails_whenAnotherListenerAnswersOnItsPort(server_binary):
    # Another server's listener on our client port answers the readiness probe with an INFO
    # while our server dies on bind: that must be a start failure, not a started server.
    import threading
    from serverproc import ServerProcess
    with socket.socket() as ls:
        ls.bind(("127.0.0.1", 0))
        ls.listen()
        ls.settimeout(0.2)
        port = ls.getsockname()[1]
        stop = threading.Event()

        def answer():
            while not stop.is_set():
                try:
                    c, _ = ls.accept()
                except OSError:
                    continue
                with c:
                    c.sendall(b'INFO {"server_id":"someone-else"}\r\n')

        t = threading.Thread(target=answer, daemon=True)
        t.start()
        srv = ServerProcess(server_binary, port=port)
        try:
            with pytest.raises(RuntimeError, match="exited"):
                srv.start()
        finally:
            stop.set()
            t.join(5)
            srv.close()
