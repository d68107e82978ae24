"""Config-file users with permissions, accounts isolation and no_auth_user.
-ERR texts exactly as nats-server 2.15.1 sends them (docs/nats-wire-notes.md §19)."""
from __future__ import annotations

import pytest

from rawconn import RawConn
from serverproc import ServerProcess

# Issue #10 (security): run against nats-server by `make test`; against clusterd once it serves
# accounts and permissions.
pytestmark = pytest.mark.security

PERMS_CONF = """
authorization {
  users = [
    { user: "alice", password: "pa", permissions: {
        publish: { allow: ["pub.>", "_INBOX.>"] },
        subscribe: { allow: ["sub.>", "_INBOX.>"], deny: ["sub.secret"] } } }
    { user: "bob", password: "pb" }
  ]
}
"""

ACCOUNTS_CONF = """
accounts {
  A: { users: [ {user: "a1", password: "x"}, {user: "a2", password: "x"} ] }
  B: { users: [ {user: "b1", password: "x"} ] }
}
no_auth_user: "a2"
"""


def _server(binary, tmp_path_factory, name, text):
    conf = tmp_path_factory.mktemp(name) / f"{name}.conf"
    conf.write_text(text)
    return ServerProcess(binary, ["-c", str(conf)])


@pytest.fixture(scope="module")
def perms_server(server_binary, tmp_path_factory):
    srv = _server(server_binary, tmp_path_factory, "perms", PERMS_CONF)
    try:
        yield srv.start()
    finally:
        srv.close()


@pytest.fixture(scope="module")
def accounts_server(server_binary, tmp_path_factory):
    srv = _server(server_binary, tmp_path_factory, "accounts", ACCOUNTS_CONF)
    try:
        yield srv.start()
    finally:
        srv.close()


def alice(srv) -> RawConn:
    return RawConn(srv.port).connect(b'CONNECT {"verbose":false,"pedantic":false,"user":"alice","pass":"pa"}\r\n')


@pytest.mark.parametrize("op,expected", [
    (b"PUB deny.x 1\r\nx\r\n", b"-ERR 'Permissions Violation for Publish to \"deny.x\"'\r\n"),
    (b"PUB pub.ok _R_.x 1\r\nx\r\n", b"-ERR 'Permissions Violation for Publish with Reply of \"_R_.x\"'\r\n"),
    (b"SUB other 1\r\n", b"-ERR 'Permissions Violation for Subscription to \"other\"'\r\n"),
    (b"SUB sub.secret 2\r\n", b"-ERR 'Permissions Violation for Subscription to \"sub.secret\"'\r\n"),
    (b"SUB other q 4\r\n", b"-ERR 'Permissions Violation for Subscription to \"other\" using queue \"q\"'\r\n"),
    (b"PUB pub.ok 1\r\nx\r\n", b""),
    (b"SUB sub.x q 3\r\n", b""),
], ids=["pub_denied", "reply_denied", "sub_not_allowed", "sub_denied", "queue_sub_denied", "pub_ok", "queue_sub_ok"])
def test_permissions_violation_exactErrorKeepsConnection(perms_server, op, expected):
    with alice(perms_server) as c:
        assert c.roundtrip(op) == expected
        assert c.roundtrip(b"SUB sub.after 9\r\nPUB pub.x 1\r\nz\r\n") == b""  # still open


def test_permissions_denyFiltersWildcardDelivery(perms_server):
    with alice(perms_server) as a, RawConn(perms_server.port) as b:
        b.connect(b'CONNECT {"verbose":false,"user":"bob","pass":"pb"}\r\n')
        assert a.roundtrip(b"SUB sub.> 5\r\n") == b""
        assert b.roundtrip(b"PUB sub.secret 1\r\ns\r\nPUB sub.x 1\r\ny\r\n") == b""
        assert a.roundtrip(b"") == b"MSG sub.x 5 1\r\ny\r\n"


def test_permissions_unrestrictedUser_canDoAnything(perms_server):
    with RawConn(perms_server.port) as b:
        b.connect(b'CONNECT {"verbose":false,"user":"bob","pass":"pb"}\r\n')
        assert b.roundtrip(b"SUB other 1\r\nPUB other 1\r\nx\r\n") == b"MSG other 1 1\r\nx\r\n"


def test_accounts_isolateSubjects(accounts_server):
    with RawConn(accounts_server.port) as a1, RawConn(accounts_server.port) as b1:
        a1.connect(b'CONNECT {"verbose":false,"user":"a1","pass":"x"}\r\n')
        b1.connect(b'CONNECT {"verbose":false,"user":"b1","pass":"x"}\r\n')
        assert a1.roundtrip(b"SUB t 1\r\n") == b""
        assert b1.roundtrip(b"SUB t 1\r\nPUB t 1\r\nb\r\n") == b"MSG t 1 1\r\nb\r\n"
        assert a1.roundtrip(b"") == b""


def test_noAuthUser_anonymousJoinsThatUsersAccount(accounts_server):
    with RawConn(accounts_server.port) as a1, RawConn(accounts_server.port) as b1, \
            RawConn(accounts_server.port) as anon:
        assert anon.info.get("auth_required") in (None, False)
        a1.connect(b'CONNECT {"verbose":false,"user":"a1","pass":"x"}\r\n')
        b1.connect(b'CONNECT {"verbose":false,"user":"b1","pass":"x"}\r\n')
        anon.connect(b'CONNECT {"verbose":false}\r\n')
        assert a1.roundtrip(b"SUB t 1\r\n") == b"" and b1.roundtrip(b"SUB t 1\r\n") == b""
        assert anon.roundtrip(b"PUB t 1\r\nn\r\n") == b""
        assert a1.roundtrip(b"") == b"MSG t 1 1\r\nn\r\n"
        assert b1.roundtrip(b"") == b""


def test_accounts_wrongPassword_authorizationViolation(accounts_server):
    with RawConn(accounts_server.port) as c:
        assert c.send_and_expect_close(b'CONNECT {"user":"a1","pass":"bad"}\r\n') == \
            b"-ERR 'Authorization Violation'\r\n"
