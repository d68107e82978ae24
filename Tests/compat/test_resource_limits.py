"""Hostile clients that try to grow the server's memory: thousands of subscriptions, a PUB
header announcing 64 MiB, a subscriber that never reads, a PING flood that never reads the
PONGs, an endless control line. Each is refused or cut off by a limit, a bystander keeps
being served, and the server's resident memory stays bounded. Proven against nats-server."""
from __future__ import annotations

import json
import socket
import time
import urllib.request

from rawconn import CONNECT_QUIET, RawConn

MiB = 1024 * 1024


def varz(srv) -> dict:
    with urllib.request.urlopen(srv.monitor_url + "/varz", timeout=3) as r:
        return json.loads(r.read())


def config_server(make_server, tmp_path, text: str):
    conf = tmp_path / "limits.conf"
    conf.write_text(text)
    return make_server(["-c", str(conf)])


def assert_bystander_served(srv) -> None:
    with RawConn(srv.port) as c:
        c.connect()
        got = c.roundtrip(b"SUB alive 1\r\nPUB alive 2\r\nok\r\n")
        assert got == b"MSG alive 1 2\r\nok\r\n"


def slow_socket(port: int) -> socket.socket:
    """A connected client socket with a tiny receive buffer that will never be read."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.settimeout(5)
    s.connect(("127.0.0.1", port))
    return s


def send_until_closed(s: socket.socket, data: bytes, times: int) -> None:
    for _ in range(times):
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError, socket.timeout):
            return


def wait_for(cond, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return cond()


def is_closed(s: socket.socket) -> bool:
    """Drains what the server sent; True once it closed the connection."""
    s.settimeout(3)
    try:
        while True:
            chunk = s.recv(1 << 20)
            if not chunk:
                return True
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


def test_maxSubscriptions_refusesTheExtraSubsAndKeepsTheConnection(make_server, tmp_path):
    srv = config_server(make_server, tmp_path, "max_subscriptions: 10\n")
    with RawConn(srv.port) as c:
        c.connect()
        got = c.roundtrip(b"".join(b"SUB many.%d %d\r\n" % (i, i) for i in range(50)))
        assert got == b"-ERR 'maximum subscriptions exceeded'\r\n" * 40
        # Still open, and room again after an UNSUB.
        assert c.roundtrip(b"UNSUB 0\r\nSUB again 99\r\nPUB again 1\r\nx\r\n") == b"MSG again 99 1\r\nx\r\n"
    assert_bystander_served(srv)


def test_pubHeaderOf64MiB_isRefusedWithoutWaitingForThePayload(server):
    with RawConn(server.port) as c:
        c.connect()
        assert c.send_and_expect_close(b"PUB big %d\r\n" % (64 * MiB)) == b"-ERR 'Maximum Payload Violation'\r\n"
    assert_bystander_served(server)


def test_endlessControlLine_isCutOff(server):
    with RawConn(server.port) as c:
        c.connect()
        got = c.send_and_expect_close(b"SUB " + b"x" * MiB)
        assert got == b"-ERR 'maximum control line exceeded'\r\n"
    assert_bystander_served(server)


def test_subscriberThatNeverReads_isClosedAsSlowConsumer(make_server, tmp_path):
    srv = config_server(make_server, tmp_path, "max_pending: 262144\nmax_payload: 65536\n")
    s = slow_socket(srv.port)
    s.recv(4096)  # INFO
    s.sendall(CONNECT_QUIET + b"SUB firehose 1\r\nPING\r\n")
    assert b"PONG" in s.recv(4096)
    before = varz(srv)["slow_consumers"]
    with RawConn(srv.port) as pub:
        pub.connect()
        msg = b"PUB firehose 16384\r\n" + b"p" * 16384 + b"\r\n"
        for _ in range(32):
            pub.send(msg * 64)  # 32 MiB in all, never read by the subscriber
        assert wait_for(lambda: varz(srv)["slow_consumers"] > before)
        assert is_closed(s)
        # The publisher is unaffected (nats-server may have sent it its RTT PING meanwhile).
        assert pub.roundtrip(b"").replace(b"PING\r\n", b"") == b""
    s.close()
    assert_bystander_served(srv)


def test_pingFloodWithoutReading_isCutOffAndMemoryStaysBounded(make_server, tmp_path):
    srv = config_server(make_server, tmp_path, "max_pending: 65536\nmax_payload: 32768\n")
    baseline = varz(srv)["mem"]
    s = slow_socket(srv.port)
    s.recv(4096)
    s.sendall(CONNECT_QUIET)
    # 2M PINGs: 12 MiB of PONGs that are never read.
    send_until_closed(s, b"PING\r\n" * 100_000, 20)
    assert wait_for(lambda: is_closed(s))
    s.close()
    assert_bystander_served(srv)
    # Without the limit the PONGs would sit in the server; with it the growth is small.
    assert varz(srv)["mem"] - baseline < 64 * MiB
