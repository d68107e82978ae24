"""Security with the official client (nats-py) and raw sockets: token and user/password
(plain and bcrypt) auth, account isolation, stream/service imports, account connection and
subscription limits, permission errors. Expectations proven against nats-server 2.15.1."""
from __future__ import annotations

import asyncio

import nats
import nats.errors
import pytest

from natsutil import publish_until_received, settle
from rawconn import RawConn
from serverproc import ServerProcess

pytestmark = pytest.mark.security

# bcrypt of "s3cr3t" (cost 4: fast enough for debug builds); made with libxcrypt's crypt(3).
S3CR3T_BCRYPT = "$2b$04$abcdefghijklmnopqrstuu35fBIWlNgF8BcAW/t2cO158N8svSFHy"

CONF = """
accounts {
  A: {
    users: [
      { user: "svc", password: "x", permissions: { subscribe: ["req.>", "jobs.> workers"], allow_responses: true } }
      { user: "a2", password: "x" }
      { user: "limited", password: "x", permissions: { publish: ["ok.>"], subscribe: ["ok.>", "_INBOX.>"] } }
    ]
    exports: [ {stream: "events.>"}, {service: "req.>"} ]
  }
  B: {
    users: [ { user: "b1", password: "%s" } ]
    imports: [
      {stream: {account: A, subject: "events.>"}, prefix: "a"}
      {service: {account: A, subject: "req.time"}, to: "time"}
    ]
  }
  C: { users: [ {user: "c1", password: "x"} ], limits: { max_connections: 1, max_subscriptions: 2 } }
}
""" % S3CR3T_BCRYPT


@pytest.fixture(scope="module")
def sec_server(server_binary, tmp_path_factory):
    conf = tmp_path_factory.mktemp("security") / "security.conf"
    conf.write_text(CONF)
    with ServerProcess(server_binary, ["-c", str(conf)]) as srv:
        yield srv


@pytest.fixture(scope="module")
def token_server(server_binary):
    srv = ServerProcess(server_binary, ["--auth", "tok3n"])
    try:
        yield srv.start()
    finally:
        srv.close()


async def _connect(srv, **kw):
    return await nats.connect(srv.url, allow_reconnect=False, max_reconnect_attempts=0, connect_timeout=3, **kw)


async def test_token_natsPy_goodConnects_badRejected(token_server):
    nc = await _connect(token_server, token="tok3n")
    try:
        sub = await nc.subscribe("tok.x")
        await nc.publish("tok.x", b"1")
        assert (await sub.next_msg(timeout=2)).data == b"1"
    finally:
        await nc.close()
    with pytest.raises(Exception) as ei:
        await _connect(token_server, token="nope")
    assert "Authorization" in str(ei.value) or isinstance(ei.value, nats.errors.AuthorizationError), ei.value


async def test_bcryptPassword_natsPy_goodConnects_badRejected(sec_server):
    nc = await _connect(sec_server, user="b1", password="s3cr3t")
    await nc.close()
    with pytest.raises(Exception) as ei:
        await _connect(sec_server, user="b1", password="S3CR3T")
    assert "Authorization" in str(ei.value) or isinstance(ei.value, nats.errors.AuthorizationError), ei.value


async def test_accounts_natsPy_isolated(sec_server):
    a = await _connect(sec_server, user="a2", password="x")
    b = await _connect(sec_server, user="b1", password="s3cr3t")
    try:
        sa = await a.subscribe("t.x")
        sb = await b.subscribe("t.x")
        await a.flush()
        await b.flush()
        await b.publish("t.x", b"from-b")
        await b.flush()
        assert (await sb.next_msg(timeout=2)).data == b"from-b"
        with pytest.raises(nats.errors.TimeoutError):
            await sa.next_msg(timeout=0.3)
    finally:
        await a.close()
        await b.close()


async def test_streamImport_natsPy_prefixedCopyInImporter(sec_server):
    a = await _connect(sec_server, user="a2", password="x")
    b = await _connect(sec_server, user="b1", password="s3cr3t")
    try:
        sub = await b.subscribe("a.events.>")
        await b.flush()
        # The importer's interest reaches the exporting account asynchronously (nats-server too,
        # on a loaded machine): publish until the first copy arrives, a bounded number of times.
        msg = await publish_until_received(a, "events.created", b"e1", sub)
        assert msg is not None, "no prefixed copy reached the importing account"
        assert (msg.subject, msg.data) == ("a.events.created", b"e1")
    finally:
        await a.close()
        await b.close()


async def test_serviceImport_natsPy_requestReply_andNoResponders(sec_server):
    a = await _connect(sec_server, user="a2", password="x")
    b = await _connect(sec_server, user="b1", password="s3cr3t")
    try:
        with pytest.raises(nats.errors.NoRespondersError):
            await b.request("time", b"?", timeout=2)

        async def answer(msg):
            assert msg.reply.startswith("_R_.")  # the requester's inbox stays private
            await msg.respond(b"noon")
        await a.subscribe("req.time", cb=answer)
        await settle(a)  # one flush can return before nats-py has written the SUB
        reply = await b.request("time", b"?", timeout=2)
        assert reply.data == b"noon"
    finally:
        await a.close()
        await b.close()


async def test_permissions_natsPy_errorCallback_andConnectionStaysUp(sec_server):
    errors: list[Exception] = []

    async def on_error(e):
        errors.append(e)
    nc = await _connect(sec_server, user="limited", password="x", error_cb=on_error)
    try:
        sub = await nc.subscribe("ok.>")
        await nc.publish("forbidden.x", b"no")
        await nc.publish("ok.yes", b"yes")
        await nc.flush()
        assert (await sub.next_msg(timeout=2)).subject == "ok.yes"
        for _ in range(100):
            if errors:
                break
            await asyncio.sleep(0.02)
        assert any('permissions violation for publish to "forbidden.x"' in str(e).lower() for e in errors), errors
        assert nc.is_connected
    finally:
        await nc.close()


def test_allowResponses_oneReplyThenViolation(sec_server):
    with RawConn(sec_server.port) as svc, RawConn(sec_server.port) as req:
        svc.connect(b'CONNECT {"verbose":false,"pedantic":false,"user":"svc","pass":"x"}\r\n')
        req.connect(b'CONNECT {"verbose":false,"pedantic":false,"user":"a2","pass":"x"}\r\n')
        assert svc.roundtrip(b"SUB req.> 1\r\n") == b""
        assert req.roundtrip(b"SUB _INBOX.z 7\r\nPUB req.q _INBOX.z 1\r\n?\r\n") == b""
        assert svc.roundtrip(b"") == b"MSG req.q 1 _INBOX.z 1\r\n?\r\n"
        assert svc.roundtrip(b"PUB _INBOX.z 1\r\n1\r\nPUB _INBOX.z 1\r\n2\r\n") == \
            b"-ERR 'Permissions Violation for Publish to \"_INBOX.z\"'\r\n"
        assert req.roundtrip(b"") == b"MSG _INBOX.z 7 1\r\n1\r\n"


def test_queuePermissions_entryWithQueueGroup(sec_server):
    with RawConn(sec_server.port) as svc:
        svc.connect(b'CONNECT {"verbose":false,"pedantic":false,"user":"svc","pass":"x"}\r\n')
        assert svc.roundtrip(b"SUB jobs.a workers 1\r\n") == b""
        assert svc.roundtrip(b"SUB jobs.a 2\r\n") == b"-ERR 'Permissions Violation for Subscription to \"jobs.a\"'\r\n"
        assert svc.roundtrip(b"SUB jobs.a other 3\r\n") == \
            b"-ERR 'Permissions Violation for Subscription to \"jobs.a\" using queue \"other\"'\r\n"


def test_accountLimits_maxSubscriptions_thenMaxConnections(sec_server):
    with RawConn(sec_server.port) as c1:
        c1.connect(b'CONNECT {"verbose":false,"pedantic":false,"user":"c1","pass":"x"}\r\n')
        assert c1.roundtrip(b"SUB s1 1\r\nSUB s2 2\r\nSUB s3 3\r\n") == b"-ERR 'maximum subscriptions exceeded'\r\n"
        with RawConn(sec_server.port) as c2:
            assert c2.send_and_expect_close(b'CONNECT {"user":"c1","pass":"x"}\r\n') == \
                b"-ERR 'maximum account active connections exceeded'\r\n"
