"""Byte-exact client-protocol behaviour, as measured on nats-server 2.15.1
(docs/nats-wire-notes.md). Each case states what the server must send and whether it
keeps or closes the connection."""
from __future__ import annotations

import pytest

from rawconn import CONNECT_QUIET, RawConn

UNKNOWN_OP = b"-ERR 'Unknown Protocol Operation'\r\n"

# (name, bytes sent after a quiet CONNECT, exact bytes the server sends before closing)
CLOSING_CASES = [
    ("unknown_op", b"FOO bar\r\n", UNKNOWN_OP),
    ("single_letter_op", b"X\r\n", UNKNOWN_OP),
    ("pub_without_args", b"PUB\r\n", UNKNOWN_OP),
    ("sub_without_args", b"SUB\r\n", UNKNOWN_OP),
    ("unsub_without_args", b"UNSUB\r\n", UNKNOWN_OP),
    ("empty_line", b"\r\n", UNKNOWN_OP),
    ("leading_space", b" PING\r\n", UNKNOWN_OP),
    ("msg_from_client", b"MSG foo 1 2\r\nhi\r\n", UNKNOWN_OP),
    ("route_op_from_client", b"RS+ $G foo\r\n", UNKNOWN_OP),
    ("payload_longer_than_size", b"SUB foo 1\r\nPUB foo 3\r\nhello\r\n", UNKNOWN_OP),
    ("payload_without_crlf", b"SUB foo 1\r\nPUB foo 5\r\nhelloPING\r\n", UNKNOWN_OP),
    ("payload_shorter_then_next_op", b"SUB foo 1\r\nPUB foo 7\r\nhello\r\nPING\r\n", UNKNOWN_OP),
    ("payload_bare_lf", b"SUB foo 1\r\nPUB foo 2\r\nhi\n", UNKNOWN_OP),
    ("hpub_payload_longer", b"HPUB foo 12 14\r\nNATS/1.0\r\n\r\nhello\r\n", UNKNOWN_OP),
    ("pub_missing_size", b"PUB foo\r\n", b""),
    ("pub_nonnumeric_size", b"PUB foo abc\r\n", b""),
    ("pub_negative_size", b"PUB foo -1\r\n", b""),
    ("pub_plus_size", b"PUB foo +1\r\n", b""),
    ("pub_size_overflow", b"PUB foo 99999999999999999999\r\n", b""),
    ("pub_too_many_args", b"PUB foo bar baz 1\r\nx\r\n", b""),
    ("hpub_header_size_gt_total", b"HPUB foo 20 10\r\n", b""),
    ("hpub_nonnumeric_size", b"HPUB foo x 10\r\n", b""),
    ("hpub_one_size", b"HPUB foo 12\r\n", b""),
    ("sub_one_arg", b"SUB  1\r\n", b""),
    ("sub_too_many_args", b"SUB a b c d\r\n", b""),
    ("err_from_client", b"-ERR 'x'\r\n", b""),
    ("pub_over_max_payload", b"PUB foo 1048577\r\n", b"-ERR 'Maximum Payload Violation'\r\n"),
    ("hpub_over_max_payload", b"HPUB foo 12 1048577\r\n", b"-ERR 'Maximum Payload Violation'\r\n"),
    ("control_line_too_long", b"PUB " + b"x" * 5000, b"-ERR 'maximum control line exceeded'\r\n"),
    ("control_line_too_long_crlf", b"SUB " + b"x" * 5000 + b" 1\r\n", b"-ERR 'maximum control line exceeded'\r\n"),
]


@pytest.mark.parametrize("name,sent,expected", CLOSING_CASES, ids=[c[0] for c in CLOSING_CASES])
def test_malformed_input_closesConnection_withExactError(server, name, sent, expected):
    with RawConn(server.port) as c:
        c.connect()
        assert c.send_and_expect_close(sent) == expected


# (name, CONNECT line, exact reply) — CONNECT variants that end the connection
CONNECT_CLOSING = [
    ("protocol_2", b'CONNECT {"protocol":2}\r\n', b"-ERR 'invalid client protocol'\r\n"),
    ("protocol_negative", b'CONNECT {"protocol":-1}\r\n', b"-ERR 'invalid client protocol'\r\n"),
    ("no_responders_without_headers", b'CONNECT {"no_responders":true}\r\n',
     b"-ERR 'no responders requires headers support'\r\n"),
    ("bad_json", b"CONNECT {bad\r\n", b""),
    ("json_array", b"CONNECT []\r\n", b""),
    ("wrong_field_type", b'CONNECT {"verbose":"yes"}\r\n', b""),
    ("no_argument", b"CONNECT\r\n", b""),
]


@pytest.mark.parametrize("name,sent,expected", CONNECT_CLOSING, ids=[c[0] for c in CONNECT_CLOSING])
def test_connect_invalid_closesConnection(server, name, sent, expected):
    with RawConn(server.port) as c:
        assert c.send_and_expect_close(sent) == expected


def test_hpub_onHeadersFalseConnection_closesSilently(server):
    with RawConn(server.port) as c:
        c.connect(b'CONNECT {"verbose":false,"headers":false}\r\n')
        assert c.send_and_expect_close(b"HPUB foo 12 14\r\nNATS/1.0\r\n\r\nhi\r\n") == b""


def test_info_hasRequiredFields(server):
    with RawConn(server.port) as c:
        info = c.info
    for key in ("server_id", "server_name", "version", "proto", "host", "port", "headers", "max_payload"):
        assert key in info, key
    assert info["port"] == server.port
    assert info["proto"] == 1
    assert info["headers"] is True
    assert info["max_payload"] == 1048576
    assert isinstance(info["client_id"], int)
    assert info["client_ip"] == "127.0.0.1"
    major, minor = (int(x) for x in info["version"].split(".")[:2])
    assert (major, minor) >= (2, 12), info["version"]
    assert "auth_required" not in info or info["auth_required"] is False


# -- connection stays open ----------------------------------------------------------------

# (name, ops sent after quiet CONNECT, exact bytes before the PONG of a trailing PING)
OPEN_CASES = [
    ("invalid_subject_double_dot", b"SUB foo..bar 1\r\n", b"-ERR 'Invalid Subject'\r\n"),
    ("invalid_subject_gt_middle", b"SUB foo.>.bar 1\r\n", b"-ERR 'Invalid Subject'\r\n"),
    ("invalid_subject_leading_dot", b"SUB .foo 1\r\n", b"-ERR 'Invalid Subject'\r\n"),
    ("invalid_subject_trailing_dot", b"SUB foo. 1\r\n", b"-ERR 'Invalid Subject'\r\n"),
    ("lowercase_ops", b"sub foo 1\r\npub foo 2\r\nhi\r\nunsub 1\r\npub foo 1\r\nx\r\n", b"MSG foo 1 2\r\nhi\r\n"),
    ("tabs_as_separators", b"SUB\tfoo\tq\t1\r\nPUB\tfoo\t2\r\nhi\r\n", b"MSG foo 1 2\r\nhi\r\n"),
    ("runs_of_spaces", b"SUB   foo    1\r\nPUB  foo   2\r\nhi\r\n", b"MSG foo 1 2\r\nhi\r\n"),
    ("trailing_space", b"SUB foo 1 \r\nPUB foo 1\r\nx\r\n", b"MSG foo 1 1\r\nx\r\n"),
    ("bare_lf_control_line", b"SUB foo 1\nPUB foo 1\nx\r\n", b"MSG foo 1 1\r\nx\r\n"),
    ("zero_length_payload", b"SUB foo 1\r\nPUB foo 0\r\n\r\n", b"MSG foo 1 0\r\n\r\n"),
    ("reply_subject", b"SUB foo 1\r\nPUB foo bar 2\r\nhi\r\n", b"MSG foo 1 bar 2\r\nhi\r\n"),
    ("literal_star_token", b"SUB foo* 1\r\nPUB foox 1\r\nx\r\nPUB foo* 1\r\ny\r\n", b"MSG foo* 1 1\r\ny\r\n"),
    ("full_wildcard", b"SUB > 7\r\nPUB a.b.c 1\r\nx\r\nUNSUB 7\r\n", b"MSG a.b.c 7 1\r\nx\r\n"),
    ("wildcard_publish_non_pedantic", b"SUB foo.* 1\r\nPUB foo.* 1\r\nx\r\n", b"MSG foo.* 1 1\r\nx\r\n"),
    ("duplicate_sid_ignored", b"SUB foo 1\r\nSUB bar 1\r\nPUB bar 1\r\nb\r\nPUB foo 1\r\na\r\n", b"MSG foo 1 1\r\na\r\n"),
    ("unsub_unknown_sid", b"UNSUB 99\r\n", b""),
    ("unsub_removes", b"SUB foo 1\r\nUNSUB 1\r\nPUB foo 1\r\na\r\n", b""),
    ("unsub_max", b"SUB foo 1\r\nUNSUB 1 2\r\nPUB foo 1\r\na\r\nPUB foo 1\r\nb\r\nPUB foo 1\r\nc\r\n",
     b"MSG foo 1 1\r\na\r\nMSG foo 1 1\r\nb\r\n"),
    ("unsub_max_already_reached", b"SUB foo 1\r\nPUB foo 1\r\na\r\nPUB foo 1\r\nb\r\nUNSUB 1 1\r\nPUB foo 1\r\nc\r\n",
     b"MSG foo 1 1\r\na\r\nMSG foo 1 1\r\nb\r\n"),
    ("unsub_max_zero", b"SUB foo 1\r\nUNSUB 1 0\r\nPUB foo 1\r\na\r\n", b""),
    ("unsub_max_nonnumeric", b"SUB foo 1\r\nUNSUB 1 x\r\nPUB foo 1\r\na\r\n", b""),
    ("client_pong_ok_info_ignored", b"PONG\r\n+OK\r\nINFO {}\r\n", b""),
    ("hpub_roundtrip", b"SUB foo 1\r\nHPUB foo 18 20\r\nNATS/1.0\r\nA: b\r\n\r\nhi\r\n",
     b"HMSG foo 1 18 20\r\nNATS/1.0\r\nA: b\r\n\r\nhi\r\n"),
    ("hpub_multi_value_case_kept", b"SUB foo 1\r\nHPUB foo 40 42\r\nNATS/1.0\r\nx-Key: a\r\nx-Key: b\r\nfoo: c\r\n\r\nhi\r\n",
     b"HMSG foo 1 40 42\r\nNATS/1.0\r\nx-Key: a\r\nx-Key: b\r\nfoo: c\r\n\r\nhi\r\n"),
    ("hpub_headers_only", b"SUB foo 1\r\nHPUB foo 18 18\r\nNATS/1.0\r\nA: b\r\n\r\n\r\n",
     b"HMSG foo 1 18 18\r\nNATS/1.0\r\nA: b\r\n\r\n\r\n"),
    ("hpub_status_passthrough", b"SUB foo 1\r\nHPUB foo 16 18\r\nNATS/1.0 503\r\n\r\nhi\r\n",
     b"HMSG foo 1 16 18\r\nNATS/1.0 503\r\n\r\nhi\r\n"),
    ("no_responders_exact_503", b"SUB _INBOX.x.* 1\r\nPUB nobody _INBOX.x.1 2\r\nhi\r\n",
     b"HMSG _INBOX.x.1 1 38 38\r\nNATS/1.0 503\r\nNats-Subject: nobody\r\n\r\n\r\n"),
    ("no_responders_for_hpub_request", b"SUB _INBOX.x.* 1\r\nHPUB nobody _INBOX.x.1 18 20\r\nNATS/1.0\r\nA: b\r\n\r\nhi\r\n",
     b"HMSG _INBOX.x.1 1 38 38\r\nNATS/1.0 503\r\nNats-Subject: nobody\r\n\r\n\r\n"),
    ("no_responders_needs_reply_interest", b"PUB nobody _INBOX.y.1 2\r\nhi\r\n", b""),
]


@pytest.mark.parametrize("name,sent,expected", OPEN_CASES, ids=[c[0] for c in OPEN_CASES])
def test_wellformed_or_semantic_error_keepsConnection_exactReply(server, name, sent, expected):
    with RawConn(server.port) as c:
        c.connect()
        assert c.roundtrip(sent) == expected
        # still fully usable afterwards
        assert c.roundtrip(b"SUB after.check 900\r\nPUB after.check 2\r\nok\r\n") == b"MSG after.check 900 2\r\nok\r\n"


def test_ping_anyCase_getsPong(server):
    with RawConn(server.port) as c:
        c.connect()
        c.send(b"ping\r\nPing\r\npInG\r\n")
        assert c.read_until(b"PONG\r\nPONG\r\nPONG\r\n") == b"PONG\r\nPONG\r\nPONG\r\n"


def test_sameSubjectTwoSids_oneCopyPerSid(server):
    with RawConn(server.port) as c:
        c.connect()
        got = c.roundtrip(b"SUB foo 1\r\nSUB foo 2\r\nPUB foo 1\r\na\r\n")
        # delivery order between a connection's own subscriptions is not specified
        assert got in (b"MSG foo 1 1\r\na\r\nMSG foo 2 1\r\na\r\n", b"MSG foo 2 1\r\na\r\nMSG foo 1 1\r\na\r\n"), got


def test_split_payload_acrossPackets_isReassembled(server):
    with RawConn(server.port) as c:
        c.connect()
        assert c.roundtrip(b"SUB foo 1\r\n") == b""
        c.send(b"PUB foo 5\r\nhel")
        c.send(b"lo\r\n")
        assert c.roundtrip(b"") == b"MSG foo 1 5\r\nhello\r\n"


def test_pub_atMaxPayload_isAccepted(server):
    with RawConn(server.port) as c:
        c.connect()
        payload = b"z" * 1048576
        assert c.roundtrip(b"SUB big 1\r\nPUB big 1048576\r\n" + payload + b"\r\n") == \
            b"MSG big 1 1048576\r\n" + payload + b"\r\n"


def test_verbose_connect_sendsOkPerOp_butNotForPing(server):
    with RawConn(server.port) as c:
        c.send(b'CONNECT {"verbose":true}\r\n')
        assert c.read_until(b"\r\n") == b"+OK\r\n"
        assert c.roundtrip(b"") == b""
        assert c.roundtrip(b"SUB foo 1\r\n") == b"+OK\r\n"
        assert c.roundtrip(b"PUB foo 2\r\nhi\r\n") == b"+OK\r\nMSG foo 1 2\r\nhi\r\n"
        assert c.roundtrip(b"UNSUB 1\r\n") == b"+OK\r\n"
        assert c.roundtrip(b"PONG\r\n") == b""
        # an invalid subject gets only the -ERR, no +OK, and the connection stays
        assert c.roundtrip(b"SUB foo..bar 2\r\n") == b"-ERR 'Invalid Subject'\r\n"


def test_verbose_pipelined_okOrder(server):
    with RawConn(server.port) as c:
        c.send(b'CONNECT {"verbose":true}\r\nSUB a 1\r\nPUB a 1\r\nx\r\nPING\r\n')
        assert c.read_until(b"PONG\r\n") == b"+OK\r\n+OK\r\n+OK\r\nMSG a 1 1\r\nx\r\nPONG\r\n"


def test_connect_empty_defaultsToVerboseAndPedantic(server):
    with RawConn(server.port) as c:
        c.send(b"CONNECT {}\r\n")
        assert c.read_until(b"\r\n") == b"+OK\r\n"
        assert c.roundtrip(b"PUB foo.* 1\r\nx\r\n") == b"-ERR 'Invalid Publish Subject'\r\n+OK\r\n"
        assert c.roundtrip(b"PUB foo..bar 1\r\nx\r\n") == b"-ERR 'Invalid Publish Subject'\r\n+OK\r\n"


def test_pedantic_invalidPublishSubject_errorKeepsConnection(server):
    with RawConn(server.port) as c:
        c.connect(b'CONNECT {"verbose":false,"pedantic":true}\r\n')
        # nats-server reports the error but still routes the message to matching subscribers
        assert c.roundtrip(b"SUB foo.> 1\r\nPUB foo.* 1\r\nx\r\n") == \
            b"-ERR 'Invalid Publish Subject'\r\nMSG foo.* 1 1\r\nx\r\n"
        assert c.roundtrip(b"PUB foo..bar 1\r\nx\r\n") == b"-ERR 'Invalid Publish Subject'\r\n"
        assert c.roundtrip(b"PUB foo.a 1\r\nx\r\n") == b"MSG foo.a 1 1\r\nx\r\n"


def test_connect_unknownField_andSecondConnect_areAccepted(server):
    with RawConn(server.port) as c:
        c.connect(b'CONNECT {"zzz":1,"verbose":false}\r\n')
        assert c.roundtrip(CONNECT_QUIET) == b""


def test_opsBeforeConnect_withoutAuth_areVerboseAndPedantic(server):
    with RawConn(server.port) as c:
        assert c.roundtrip(b"") == b""
        assert c.roundtrip(b"SUB foo 1\r\n") == b"+OK\r\n"
        assert c.roundtrip(b"PUB foo 2\r\nhi\r\n") == b"+OK\r\nMSG foo 1 2\r\nhi\r\n"
        assert c.roundtrip(b"SUB foo..bar 2\r\n") == b"-ERR 'Invalid Subject'\r\n"
        assert c.roundtrip(b"PUB foo.* 1\r\nx\r\n") == b"-ERR 'Invalid Publish Subject'\r\n+OK\r\n"


def test_queueAndPlainSub_sameConnection_plainPlusOneMember(server):
    with RawConn(server.port) as c:
        c.connect()
        got = c.roundtrip(b"SUB foo q 1\r\nSUB foo 2\r\nSUB foo q 3\r\nPUB foo 1\r\na\r\n")
        msgs = [m for m in got.split(b"\r\na\r\n") if m]
        sids = sorted(m.split(b" ")[2] for m in msgs)
        assert len(msgs) == 2, got
        assert sids in ([b"1", b"2"], [b"2", b"3"]), got


def test_headersFalseReceiver_getsMsgWithoutHeaderBlock(server):
    with RawConn(server.port) as r, RawConn(server.port) as p:
        r.connect(b'CONNECT {"verbose":false,"headers":false}\r\n')
        assert r.roundtrip(b"SUB foo 1\r\n") == b""
        p.connect()
        assert p.roundtrip(b"HPUB foo bar 18 20\r\nNATS/1.0\r\nA: b\r\n\r\nhi\r\n"
                           b"HPUB foo 18 18\r\nNATS/1.0\r\nA: b\r\n\r\n\r\n") == b""
        assert r.roundtrip(b"") == b"MSG foo 1 bar 2\r\nhi\r\nMSG foo 1 0\r\n\r\n"


def test_echoFalse_ownSubSkipped_otherConnectionReceives(server):
    with RawConn(server.port) as a, RawConn(server.port) as b:
        a.connect(b'CONNECT {"verbose":false,"echo":false}\r\n')
        b.connect()
        assert a.roundtrip(b"SUB echo.t 1\r\n") == b""
        assert b.roundtrip(b"SUB echo.t 5\r\n") == b""
        assert a.roundtrip(b"PUB echo.t 2\r\nhi\r\n") == b""
        assert b.roundtrip(b"") == b"MSG echo.t 5 2\r\nhi\r\n"


def test_noRespondersDisabled_noStatusMessage(server):
    with RawConn(server.port) as c:
        c.connect(b'CONNECT {"verbose":false,"headers":true}\r\n')
        assert c.roundtrip(b"SUB _INBOX.x.* 1\r\nPUB nobody _INBOX.x.1 2\r\nhi\r\n") == b""


def test_manySubscriptions_tenThousand_routeAndUnsubscribe(server):
    n = 10_000
    with RawConn(server.port) as c:
        c.connect()
        subs = b"".join(b"SUB many.%d.x %d\r\n" % (i, i) for i in range(1, n + 1))
        assert c.roundtrip(subs, timeout=20) == b""
        assert c.roundtrip(b"PUB many.1.x 1\r\na\r\nPUB many.5000.x 1\r\nb\r\nPUB many.10000.x 1\r\nc\r\n"
                           b"PUB many.10001.x 1\r\nd\r\n") == \
            b"MSG many.1.x 1 1\r\na\r\nMSG many.5000.x 5000 1\r\nb\r\nMSG many.10000.x 10000 1\r\nc\r\n"
        unsubs = b"".join(b"UNSUB %d\r\n" % i for i in range(1, n + 1))
        assert c.roundtrip(unsubs, timeout=20) == b""
        assert c.roundtrip(b"PUB many.5000.x 1\r\nb\r\n") == b""
