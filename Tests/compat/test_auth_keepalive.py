"""Authentication (--user/--pass, --auth), auth timeout, and server keepalive (config file
ping_interval / ping_max). Exact -ERR texts as nats-server 2.15.1 sends them."""
from __future__ import annotations

import time

import nats
import nats.errors
import pytest

from rawconn import RawConn

AUTH_VIOLATION = b"-ERR 'Authorization Violation'\r\n"


@pytest.fixture(scope="module")
def userpass_server(server_binary):
    from serverproc import ServerProcess
    srv = ServerProcess(server_binary, ["--user", "alice", "--pass", "s3cret"])
    try:
        yield srv.start()
    finally:
        srv.close()


@pytest.fixture(scope="module")
def token_server(server_binary):
    from serverproc import ServerProcess
    srv = ServerProcess(server_binary, ["--auth", "tok3n"])
    try:
        yield srv.start()
    finally:
        srv.close()


def test_userPass_infoAdvertisesAuthRequired(userpass_server):
    with RawConn(userpass_server.port) as c:
        assert c.info["auth_required"] is True


@pytest.mark.parametrize("connect_line", [
    b"CONNECT {}\r\n",
    b'CONNECT {"user":"alice","pass":"wrong"}\r\n',
    b'CONNECT {"user":"bob","pass":"s3cret"}\r\n',
    b"PING\r\n",
    b"SUB foo 1\r\n",
], ids=["no_creds", "wrong_pass", "wrong_user", "ping_first", "sub_first"])
def test_userPass_badOrMissing_authorizationViolationAndClose(userpass_server, connect_line):
    with RawConn(userpass_server.port) as c:
        assert c.send_and_expect_close(connect_line) == AUTH_VIOLATION


def test_userPass_good_connects(userpass_server):
    with RawConn(userpass_server.port) as c:
        c.send(b'CONNECT {"verbose":false,"user":"alice","pass":"s3cret"}\r\nPING\r\n')
        assert c.read_until(b"PONG\r\n") == b"PONG\r\n"


async def test_userPass_natsPy_goodAndBad(userpass_server):
    nc = await nats.connect(userpass_server.url, user="alice", password="s3cret", allow_reconnect=False)
    try:
        sub = await nc.subscribe("auth.ok")
        await nc.publish("auth.ok", b"1")
        assert (await sub.next_msg(timeout=2)).data == b"1"
    finally:
        await nc.close()
    with pytest.raises(Exception) as ei:
        await nats.connect(userpass_server.url, user="alice", password="nope", allow_reconnect=False,
                           max_reconnect_attempts=0, connect_timeout=2)
    assert "Authorization" in str(ei.value) or isinstance(ei.value, nats.errors.AuthorizationError), ei.value


@pytest.mark.parametrize("connect_line", [
    b"CONNECT {}\r\n", b'CONNECT {"auth_token":"x"}\r\n'], ids=["no_token", "bad_token"])
def test_token_badOrMissing_authorizationViolationAndClose(token_server, connect_line):
    with RawConn(token_server.port) as c:
        assert c.info["auth_required"] is True
        assert c.send_and_expect_close(connect_line) == AUTH_VIOLATION


async def test_token_natsPy_connects(token_server):
    nc = await nats.connect(token_server.url, token="tok3n", allow_reconnect=False)
    try:
        await nc.flush()
        assert nc.is_connected
    finally:
        await nc.close()


def test_authTimeout_noConnect_closedAfterAboutTwoSeconds(userpass_server):
    t0 = time.monotonic()
    with RawConn(userpass_server.port) as c:
        got = c.until_closed(timeout=6)
    elapsed = time.monotonic() - t0
    assert got == b"-ERR 'Authentication Timeout'\r\n"
    assert 1.5 <= elapsed <= 4.0, elapsed


def test_noAuth_noAuthTimeout(server):
    with RawConn(server.port) as c:
        time.sleep(0.3)
        assert c.roundtrip(b"") == b""


@pytest.fixture(scope="module")
def fast_ping_server(server_binary, tmp_path_factory):
    from serverproc import ServerProcess
    conf = tmp_path_factory.mktemp("pingconf") / "ping.conf"
    conf.write_text('ping_interval: "1s"\nping_max: 2\n')
    with ServerProcess(server_binary, ["-c", str(conf)]) as srv:
        yield srv


def test_staleConnection_unansweredPings_closeWithError(fast_ping_server):
    t0 = time.monotonic()
    with RawConn(fast_ping_server.port) as c:
        c.connect()
        got = c.until_closed(timeout=8)
    elapsed = time.monotonic() - t0
    assert got == b"PING\r\nPING\r\n-ERR 'Stale Connection'\r\n"
    assert 2.0 <= elapsed <= 6.0, elapsed


def test_keepalive_answeredPings_connectionStays(fast_ping_server):
    with RawConn(fast_ping_server.port) as c:
        c.connect()
        pings = 0
        deadline = time.monotonic() + 3.5
        while time.monotonic() < deadline:
            got = c.read_until(b"PING\r\n", timeout=3)
            assert got == b"PING\r\n"
            pings += 1
            c.send(b"PONG\r\n")
        assert pings >= 2
        assert c.roundtrip(b"") == b""


def test_keepalive_varzShowsConfiguredInterval(fast_ping_server):
    import json
    import urllib.request
    with urllib.request.urlopen(fast_ping_server.monitor_url + "/varz", timeout=2) as r:
        v = json.loads(r.read())
    assert v["ping_interval"] == 1_000_000_000
    assert v["ping_max"] == 2
