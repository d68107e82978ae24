#!/usr/bin/env python3
"""Probe a NATS-protocol server's exact wire behaviour with raw sockets.

Starts the server binary (nats-server by default, or clusterd) on free loopback
ports, runs a list of scripted raw-socket sessions and prints, per session, the
exact bytes received after each chunk sent and whether the server closed the
connection. The output is the evidence behind docs/nats-wire-notes.md, and
running it against clusterd gives a line-by-line diff target:

    .venv/bin/python Tests/compat/probe_wire.py > /tmp/nats.txt
    .venv/bin/python Tests/compat/probe_wire.py --bin .build/debug/clusterd > /tmp/clz.txt
    diff /tmp/nats.txt /tmp/clz.txt

(--normalize masks ids, ports, timestamps and the optional protocol-1 INFO for a clean diff.)
Only sessions whose name contains --only (substring) are run when it is given.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import socket
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from serverproc import ServerProcess, default_nats_server_bin  # noqa: E402

CONNECT = b'CONNECT {"verbose":false,"pedantic":false,"headers":true,"no_responders":true,"protocol":1}\r\n'


def read_for(sock: socket.socket, seconds: float) -> tuple[bytes, bool]:
    """Read everything arriving within `seconds`; returns (bytes, closed)."""
    deadline = time.monotonic() + seconds
    out = b""
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return out, False
        sock.settimeout(left)
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            return out, False
        except ConnectionResetError:
            return out, True
        if not chunk:
            return out, True
        out += chunk


def session(port: int, steps: list, wait: float = 0.25, show_info: bool = False) -> list[str]:
    """Run one scripted session. `steps` items are bytes to send, or
    ("sleep", seconds) to just listen. Returns printable transcript lines."""
    lines = []
    s = socket.create_connection(("127.0.0.1", port), timeout=2)
    try:
        info, closed = read_for(s, 0.2)
        if show_info:
            lines.append(f"  <- {info!r}")
        else:
            lines.append(f"  <- INFO line ({len(info)} bytes)")
        for step in steps:
            if isinstance(step, tuple) and step[0] == "sleep":
                t0 = time.monotonic()
                got, closed = read_for(s, step[1])
                lines.append(f"  .. listened {step[1]}s: {got!r} closed={closed} at={time.monotonic()-t0:.2f}s")
            else:
                try:
                    s.sendall(step)
                except OSError as e:
                    lines.append(f"  -> {step!r}: send failed {e}")
                    break
                got, closed = read_for(s, wait)
                shown = step if len(step) < 120 else step[:60] + b"..." + repr(len(step)).encode() + b" bytes"
                lines.append(f"  -> {shown!r}\n     <- {got!r} closed={closed}")
            if closed:
                break
    finally:
        s.close()
    return lines


def core_cases():
    c = CONNECT
    big = b"x" * 5000
    return [
        ("connect_ping", [c + b"PING\r\n"]),
        ("verbose_true_ops", [b'CONNECT {"verbose":true}\r\n', b"PING\r\n", b"SUB foo 1\r\n",
                              b"PUB foo 2\r\nhi\r\n", b"UNSUB 1\r\n", b"PONG\r\n", b"SUB foo..bar 2\r\n"]),
        ("verbose_pub_pipelined", [b'CONNECT {"verbose":true}\r\nSUB a 1\r\nPUB a 1\r\nx\r\nPING\r\n']),
        ("pedantic_pub_wildcard", [b'CONNECT {"pedantic":true}\r\n', b"PUB foo.* 1\r\nx\r\n", b"PUB foo..bar 1\r\nx\r\n", b"PING\r\n"]),
        ("non_pedantic_pub_wildcard", [c, b"SUB foo.* 1\r\n", b"PUB foo.* 1\r\nx\r\n", b"PUB foo..bar 1\r\nx\r\n", b"PING\r\n"]),
        ("protocol_2", [b'CONNECT {"protocol":2}\r\n', b"PING\r\n"]),
        ("protocol_neg", [b'CONNECT {"protocol":-1}\r\n', b"PING\r\n"]),
        ("no_responders_without_headers", [b'CONNECT {"no_responders":true}\r\n', b"PING\r\n"]),
        ("headers_false_hpub", [b'CONNECT {"headers":false}\r\n', b"HPUB foo 12 14\r\nNATS/1.0\r\n\r\nhi\r\n", b"PING\r\n"]),
        ("no_connect_hpub", [b"HPUB foo 12 14\r\nNATS/1.0\r\n\r\nhi\r\n", b"PING\r\n"]),
        ("connect_bad_json", [b"CONNECT {bad\r\n", b"PING\r\n"]),
        ("connect_empty", [b"CONNECT\r\n", b"PING\r\n"]),
        ("connect_empty_obj", [b"CONNECT {}\r\n", b"PING\r\n"]),
        ("connect_twice", [c, c, b"PING\r\n"]),
        ("connect_unknown_field", [b'CONNECT {"zzz":1,"verbose":false}\r\n', b"PING\r\n"]),
        ("pub_missing_args", [c, b"PUB\r\n", b"PING\r\n"]),
        ("pub_missing_size", [c, b"PUB foo\r\n", b"PING\r\n"]),
        ("pub_nonnumeric_size", [c, b"PUB foo abc\r\n", b"PING\r\n"]),
        ("pub_negative_size", [c, b"PUB foo -1\r\n", b"PING\r\n"]),
        ("pub_too_many_args", [c, b"PUB foo bar baz 1\r\nx\r\n", b"PING\r\n"]),
        ("pub_payload_longer", [c, b"SUB foo 1\r\n", b"PUB foo 3\r\nhello\r\n", b"PING\r\n"]),
        ("pub_payload_shorter", [c, b"SUB foo 1\r\n", b"PUB foo 7\r\nhello\r\n", b"PING\r\n"]),
        ("pub_payload_shorter_then_more", [c, b"SUB foo 1\r\n", b"PUB foo 7\r\nhello\r\n", b"PING\r\nPING\r\n"]),
        ("pub_missing_crlf_after_payload", [c, b"SUB foo 1\r\n", b"PUB foo 5\r\nhelloPING\r\n", b"PING\r\n"]),
        ("pub_then_more_data_same_packet", [c, b"SUB foo 1\r\n", b"PUB foo 5\r\nhello\r\nPING\r\n"]),
        ("pub_split_payload", [c, b"SUB foo 1\r\n", b"PUB foo 5\r\nhel", b"lo\r\n", b"PING\r\n"]),
        ("pub_zero_len", [c, b"SUB foo 1\r\n", b"PUB foo 0\r\n\r\n", b"PING\r\n"]),
        ("pub_with_reply", [c, b"SUB foo 1\r\n", b"PUB foo bar 2\r\nhi\r\n"]),
        ("pub_exceeds_max_payload", [c, b"PUB foo 1048577\r\n", b"PING\r\n"]),
        ("pub_equal_max_payload_header", [c, b"PUB foo 1048576\r\n", b"PING\r\n"]),
        ("hpub_exceeds_max_payload", [c, b"HPUB foo 12 1048577\r\n", b"PING\r\n"]),
        ("hpub_hdr_gt_total", [c, b"HPUB foo 20 10\r\n", b"PING\r\n"]),
        ("hpub_bad_sizes", [c, b"HPUB foo x 10\r\n", b"PING\r\n"]),
        ("hpub_missing_args", [c, b"HPUB foo 12\r\n", b"PING\r\n"]),
        ("control_line_too_long", [c, b"PUB " + big, b"PING\r\n"]),
        ("control_line_too_long_with_crlf", [c, b"SUB " + big + b" 1\r\n", b"PING\r\n"]),
        ("unknown_op", [c, b"FOO bar\r\n", b"PING\r\n"]),
        ("unknown_op_single_letter", [c, b"X\r\n"]),
        ("lowercase_ops", [b'connect {"verbose":false}\r\n', b"sub foo 1\r\n", b"pub foo 2\r\nhi\r\n", b"ping\r\n", b"Ping\r\n"]),
        ("tabs_between_args", [c, b"SUB\tfoo\t1\r\n", b"PUB\tfoo\t2\r\nhi\r\n", b"PING\r\n"]),
        ("multiple_spaces", [c, b"SUB   foo    1\r\n", b"PUB  foo   2\r\nhi\r\n", b"PING\r\n"]),
        ("bare_lf", [c, b"PING\n", b"SUB foo 1\n", b"PUB foo 2\nhi\n", b"PING\r\n"]),
        ("sub_invalid_dotdot", [c, b"SUB foo..bar 1\r\n", b"PING\r\n"]),
        ("sub_invalid_gt_middle", [c, b"SUB foo.>.bar 1\r\n", b"PING\r\n"]),
        ("sub_invalid_leading_dot", [c, b"SUB .foo 1\r\n", b"PING\r\n"]),
        ("sub_invalid_trailing_dot", [c, b"SUB foo. 1\r\n", b"PING\r\n"]),
        ("sub_empty_subject", [c, b"SUB  1\r\n", b"PING\r\n"]),
        ("sub_no_args", [c, b"SUB\r\n", b"PING\r\n"]),
        ("sub_too_many_args", [c, b"SUB a b c d\r\n", b"PING\r\n"]),
        ("sub_literal_star_token", [c, b"SUB foo* 1\r\n", b"PUB foo* 1\r\nx\r\n", b"PUB foox 1\r\nx\r\n", b"PING\r\n"]),
        ("sub_gt_only", [c, b"SUB > 1\r\n", b"PUB a.b 1\r\nx\r\n", b"PING\r\n"]),
        ("sub_invalid_queue", [c, b"SUB foo q.* 1\r\n", b"PING\r\n"]),
        ("sub_duplicate_sid", [c, b"SUB foo 1\r\n", b"SUB bar 1\r\n", b"PUB foo 1\r\na\r\n", b"PUB bar 1\r\nb\r\n", b"PING\r\n"]),
        ("sub_same_subject_twice", [c, b"SUB foo 1\r\n", b"SUB foo 2\r\n", b"PUB foo 1\r\na\r\n", b"PING\r\n"]),
        ("unsub_unknown_sid", [c, b"UNSUB 99\r\n", b"PING\r\n"]),
        ("unsub_no_args", [c, b"UNSUB\r\n", b"PING\r\n"]),
        ("unsub_bad_max", [c, b"SUB foo 1\r\n", b"UNSUB 1 x\r\n", b"PING\r\n"]),
        ("unsub_max", [c, b"SUB foo 1\r\n", b"UNSUB 1 2\r\n", b"PUB foo 1\r\na\r\nPUB foo 1\r\nb\r\nPUB foo 1\r\nc\r\n", b"PING\r\n"]),
        ("unsub_max_already_reached", [c, b"SUB foo 1\r\n", b"PUB foo 1\r\na\r\nPUB foo 1\r\nb\r\n", b"UNSUB 1 1\r\n", b"PUB foo 1\r\nc\r\n", b"PING\r\n"]),
        ("unsub_max_zero", [c, b"SUB foo 1\r\n", b"UNSUB 1 0\r\n", b"PUB foo 1\r\na\r\n", b"PING\r\n"]),
        ("no_responders_request", [c, b"SUB _INBOX.x.* 1\r\n", b"PUB nobody _INBOX.x.1 2\r\nhi\r\n"]),
        ("no_responders_request_no_inbox_sub", [c, b"PUB nobody _INBOX.x.1 2\r\nhi\r\n", b"PING\r\n"]),
        ("no_responders_hpub_request", [c, b"SUB _INBOX.x.* 1\r\n", b"HPUB nobody _INBOX.x.1 18 20\r\nNATS/1.0\r\nA: b\r\n\r\nhi\r\n"]),
        ("no_responders_disabled", [b'CONNECT {"headers":true}\r\n', b"SUB _INBOX.x.* 1\r\n", b"PUB nobody _INBOX.x.1 2\r\nhi\r\n", b"PING\r\n"]),
        ("ping_before_connect", [b"PING\r\n", b"PING\r\n"]),
        ("pub_before_connect", [b"SUB foo 1\r\n", b"PUB foo 2\r\nhi\r\n", b"PING\r\n"]),
        ("hmsg_to_header_client", [c, b"SUB foo 1\r\n", b"HPUB foo 18 20\r\nNATS/1.0\r\nA: b\r\n\r\nhi\r\n"]),
        ("hpub_status_line", [c, b"SUB foo 1\r\n", b"HPUB foo 16 18\r\nNATS/1.0 503\r\n\r\nhi\r\n"]),
        ("hpub_only_headers", [c, b"SUB foo 1\r\n", b"HPUB foo 18 18\r\nNATS/1.0\r\nA: b\r\n\r\n\r\n"]),
        ("hpub_invalid_header_block", [c, b"SUB foo 1\r\n", b"HPUB foo 6 8\r\nXXXXXXhi\r\n", b"PING\r\n"]),
        ("echo_false", [b'CONNECT {"echo":false,"headers":true}\r\n', b"SUB foo 1\r\n", b"PUB foo 2\r\nhi\r\n", b"PING\r\n"]),
        ("echo_default", [b'CONNECT {"headers":true}\r\n', b"SUB foo 1\r\n", b"PUB foo 2\r\nhi\r\n", b"PING\r\n"]),
        ("queue_and_plain_same_subject", [c, b"SUB foo q 1\r\nSUB foo 2\r\nSUB foo q 3\r\n", b"PUB foo 1\r\na\r\n", b"PING\r\n"]),
        ("pong_unsolicited", [c, b"PONG\r\n", b"PING\r\n"]),
        ("msg_op_from_client", [c, b"MSG foo 1 2\r\nhi\r\n", b"PING\r\n"]),
        ("info_op_from_client", [c, b"INFO {}\r\n", b"PING\r\n"]),
        ("plus_ok_from_client", [c, b"+OK\r\n", b"PING\r\n"]),
        ("err_from_client", [c, b"-ERR 'x'\r\n", b"PING\r\n"]),
        ("route_op_from_client", [c, b"RS+ $G foo\r\n", b"PING\r\n"]),
        ("empty_line", [c, b"\r\n", b"PING\r\n"]),
        ("space_before_op", [c, b" PING\r\n", b"PING\r\n"]),
        ("connect_empty_defaults_pedantic", [b"CONNECT {}\r\n", b"PUB foo.* 1\r\nx\r\n", b"PUB foo..bar 1\r\nx\r\n", b"PING\r\n"]),
        ("verbose_before_connect_invalid_sub", [b"SUB foo..bar 1\r\n", b"PUB foo.* 1\r\nx\r\n", b"PING\r\n"]),
        ("unsub_bad_max_then_pub", [c, b"SUB foo 1\r\n", b"UNSUB 1 x\r\n", b"PUB foo 1\r\na\r\n", b"PING\r\n"]),
        ("unsub_negative_max", [c, b"SUB foo 1\r\n", b"UNSUB 1 -1\r\n", b"PUB foo 1\r\na\r\n", b"PING\r\n"]),
        ("hpub_multi_value_case", [c, b"SUB foo 1\r\n", b"HPUB foo 40 42\r\nNATS/1.0\r\nx-Key: a\r\nx-Key: b\r\nfoo: c\r\n\r\nhi\r\n"]),
        ("hpub_payload_longer", [c, b"SUB foo 1\r\n", b"HPUB foo 12 14\r\nNATS/1.0\r\n\r\nhello\r\n", b"PING\r\n"]),
        ("pub_size_leading_plus", [c, b"PUB foo +1\r\nx\r\n", b"PING\r\n"]),
        ("pub_huge_size_overflow", [c, b"PUB foo 99999999999999999999\r\n", b"PING\r\n"]),
        ("sub_queue_with_tab", [c, b"SUB foo\tq\t1\r\n", b"PUB foo 1\r\nx\r\n", b"PING\r\n"]),
        ("pub_subject_with_wildcard_gt", [c, b"SUB > 1\r\n", b"PUB foo.> 1\r\nx\r\n", b"PING\r\n"]),
        ("connect_not_json_object", [b"CONNECT []\r\n", b"PING\r\n"]),
        ("connect_wrong_type", [b'CONNECT {"verbose":"yes"}\r\n', b"PING\r\n"]),
        ("trailing_space_after_op", [c, b"PING \r\n", b"SUB foo 1 \r\n", b"PING\r\n"]),
    ]


def headers_false_receiver(port: int) -> list[str]:
    """A headers:false subscriber receiving an HPUB from another connection."""
    lines = []
    r = socket.create_connection(("127.0.0.1", port))
    p = socket.create_connection(("127.0.0.1", port))
    read_for(r, 0.1); read_for(p, 0.1)
    r.sendall(b'CONNECT {"headers":false}\r\nSUB foo 1\r\nPING\r\n')
    lines.append(f"  receiver setup <- {read_for(r, 0.2)[0]!r}")
    p.sendall(CONNECT + b"HPUB foo bar 18 20\r\nNATS/1.0\r\nA: b\r\n\r\nhi\r\nHPUB foo 18 18\r\nNATS/1.0\r\nA: b\r\n\r\n\r\nPING\r\n")
    lines.append(f"  publisher <- {read_for(p, 0.2)[0]!r}")
    lines.append(f"  receiver (headers:false) <- {read_for(r, 0.2)[0]!r}")
    r.close(); p.close()
    return lines


def echo_false_two_conns(port: int) -> list[str]:
    lines = []
    a = socket.create_connection(("127.0.0.1", port))
    b = socket.create_connection(("127.0.0.1", port))
    read_for(a, 0.1); read_for(b, 0.1)
    a.sendall(b'CONNECT {"echo":false}\r\nSUB foo 1\r\nPING\r\n')
    b.sendall(b'CONNECT {}\r\nSUB foo 1\r\nPING\r\n')
    read_for(a, 0.2); read_for(b, 0.2)
    a.sendall(b"PUB foo 2\r\nhi\r\nPING\r\n")
    lines.append(f"  echo:false publisher <- {read_for(a, 0.2)[0]!r}")
    lines.append(f"  other subscriber <- {read_for(b, 0.2)[0]!r}")
    a.close(); b.close()
    return lines


def queue_distribution(port: int) -> list[str]:
    subs = []
    for _ in range(3):
        s = socket.create_connection(("127.0.0.1", port))
        read_for(s, 0.05)
        s.sendall(CONNECT + b"SUB q.x grp 1\r\nPING\r\n")
        read_for(s, 0.1)
        subs.append(s)
    p = socket.create_connection(("127.0.0.1", port))
    read_for(p, 0.05)
    p.sendall(CONNECT + b"".join(b"PUB q.x 1\r\nx\r\n" for _ in range(300)) + b"PING\r\n")
    read_for(p, 0.3)
    counts = [read_for(s, 0.2)[0].count(b"MSG q.x 1 1") for s in subs]
    for s in subs + [p]:
        s.close()
    return [f"  300 msgs over 3 queue members (separate conns): {counts} sum={sum(counts)}"]


def fetch_json(url: str):
    with urllib.request.urlopen(url, timeout=2) as r:
        return r.status, json.loads(r.read())


def monitoring(mport: int) -> list[str]:
    lines = []
    for path in ["/varz", "/connz", "/subsz", "/routez", "/healthz", "/jsz", "/healthz?js-enabled-only=true"]:
        try:
            status, body = fetch_json(f"http://127.0.0.1:{mport}{path}")
            lines.append(f"  {path} {status}: keys={list(body.keys())}")
            if path == "/healthz":
                lines.append(f"    body={json.dumps(body)}")
        except Exception as e:  # HTTPError carries a JSON body too
            body = getattr(e, "read", lambda: b"")()
            lines.append(f"  {path}: {e} {body[:200]!r}")
    try:
        _, v = fetch_json(f"http://127.0.0.1:{mport}/varz")
        sample = {k: v[k] for k in ["server_id", "server_name", "version", "proto", "host", "port", "max_payload",
                                    "max_connections", "ping_interval", "ping_max", "http_port", "auth_timeout",
                                    "max_control_line", "max_pending", "write_deadline", "connections",
                                    "total_connections", "in_msgs", "out_msgs", "subscriptions", "uptime", "now", "start"]
                  if k in v}
        lines.append(f"  /varz sample: {json.dumps(sample)}")
        _, cz = fetch_json(f"http://127.0.0.1:{mport}/connz?subs=1")
        lines.append(f"  /connz?subs=1: {json.dumps(cz)[:900]}")
        _, sz = fetch_json(f"http://127.0.0.1:{mport}/subsz")
        lines.append(f"  /subsz: {json.dumps(sz)}")
        _, rz = fetch_json(f"http://127.0.0.1:{mport}/routez")
        lines.append(f"  /routez: {json.dumps(rz)}")
    except Exception as e:
        lines.append(f"  monitoring detail failed: {e}")
    return lines


def auth_cases(binary: str) -> list[str]:
    out = []
    with ServerProcess(binary, ["--user", "a", "--pass", "b"]) as srv:
        out.append("== auth user/pass (--user a --pass b)")
        out.append(f"  INFO: {srv.raw_info()!r}")
        for name, steps in [
            ("no_creds", [b"CONNECT {}\r\n", b"PING\r\n"]),
            ("wrong_pass", [b'CONNECT {"user":"a","pass":"x"}\r\n', b"PING\r\n"]),
            ("good", [b'CONNECT {"user":"a","pass":"b"}\r\nPING\r\n']),
            ("ping_first", [b"PING\r\n"]),
            ("sub_first", [b"SUB foo 1\r\n"]),
            ("timeout", [("sleep", 3.0)]),
        ]:
            out.append(f"-- {name}")
            out += session(srv.port, steps)
    with ServerProcess(binary, ["--auth", "tok"]) as srv:
        out.append("== auth token (--auth tok)")
        out.append(f"  INFO: {srv.raw_info()!r}")
        for name, steps in [
            ("no_token", [b"CONNECT {}\r\n", b"PING\r\n"]),
            ("bad_token", [b'CONNECT {"auth_token":"x"}\r\n']),
            ("good", [b'CONNECT {"auth_token":"tok"}\r\nPING\r\n']),
        ]:
            out.append(f"-- {name}")
            out += session(srv.port, steps)
    return out


def ping_cases(binary: str) -> list[str]:
    out = []
    with tempfile.TemporaryDirectory() as d:
        conf = os.path.join(d, "ping.conf")
        with open(conf, "w") as f:
            f.write('ping_interval: "1s"\nping_max: 2\n')
        with ServerProcess(binary, ["-c", conf]) as srv:
            out.append("== stale connection (ping_interval 1s, ping_max 2), client never answers")
            out += session(srv.port, [CONNECT, ("sleep", 5.0)])
            out.append("-- client answering PONG stays")
            s = socket.create_connection(("127.0.0.1", srv.port))
            read_for(s, 0.1)
            s.sendall(CONNECT)
            got_all = b""
            for _ in range(4):
                got, closed = read_for(s, 1.0)
                got_all += got
                if b"PING" in got:
                    s.sendall(b"PONG\r\n")
                if closed:
                    break
            out.append(f"  4s with PONG answers: {got_all!r} closed={closed}")
            s.close()
            out.append("-- client only sending traffic (no PONG)")
            s = socket.create_connection(("127.0.0.1", srv.port))
            read_for(s, 0.1)
            s.sendall(CONNECT)
            got_all = b""
            closed = False
            t0 = time.monotonic()
            while time.monotonic() - t0 < 4.5 and not closed:
                s.sendall(b"PUB x 1\r\nx\r\n")
                got, closed = read_for(s, 0.3)
                got_all += got
            out.append(f"  4.5s of PUB traffic: {got_all!r} closed={closed}")
            s.close()
    return out


class _Normalizer:
    """stdout wrapper that masks run-specific values."""
    RULES = [
        (re.compile(r'INFO \{[^}]*"connect_info":true[^}]*\} \\r\\n'), ""),
        (re.compile(r'"(server_id|server_name|xkey)":\s?"[^"]*"'), r'"\1":X'),
        (re.compile(r'"(port|client_id|http_port)":\s?\d+'), r'"\1":N'),
        (re.compile(r"INFO line \(\d+ bytes\)"), "INFO line"),
        (re.compile(r"\d{4}-\d\d-\d\dT[\d:.]+Z"), "TS"),
        (re.compile(r"127\.0\.0\.1:\d+"), "127.0.0.1:P"),
        (re.compile(r"\$JS\.ACK\.(\S+?)\.\d{12,}\."), r"$JS.ACK.\1.TS."),
    ]

    def __init__(self, out):
        self.out = out

    def write(self, text: str) -> int:
        for rx, rep in self.RULES:
            text = rx.sub(rep, text)
        return self.out.write(text)

    def flush(self) -> None:
        self.out.flush()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=None, help="server binary (default: nats-server from the venv)")
    ap.add_argument("--only", default=None)
    ap.add_argument("--skip-slow", action="store_true", help="skip auth timeout / ping cases")
    ap.add_argument("--normalize", action="store_true",
                    help="mask ids, ports, timestamps and the optional protocol-1 INFO so two servers diff cleanly")
    a = ap.parse_args()
    if a.normalize:
        sys.stdout = _Normalizer(sys.stdout)
    binary = a.bin or default_nats_server_bin()
    print(f"# binary: {binary}")
    with ServerProcess(binary, ["-js", "-sd", "@TMP@"]) as srv:
        print("== startup stderr")
        for ln in srv.startup_lines:
            print("  " + re.sub(r"^\[\d+\] \S+ \S+ ", "[pid] DATE TIME ", ln))
        print("== INFO")
        print(f"  {srv.raw_info()!r}")
        for name, steps in core_cases():
            if a.only and not any(o in name for o in a.only.split(',')):
                continue
            print(f"== {name}")
            print("\n".join(session(srv.port, steps)))
        for name, fn in [("headers_false_receiver", headers_false_receiver),
                         ("echo_false_two_conns", echo_false_two_conns),
                         ("queue_distribution", queue_distribution)]:
            if a.only and not any(o in name for o in a.only.split(',')):
                continue
            print(f"== {name}")
            print("\n".join(fn(srv.port)))
        if not a.only or "monitor" in a.only:
            print("== monitoring")
            print("\n".join(monitoring(srv.monitor_port)))
    if not a.skip_slow and (not a.only or "auth" in a.only):
        print("\n".join(auth_cases(binary)))
    if not a.skip_slow and (not a.only or "ping" in a.only):
        print("\n".join(ping_cases(binary)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
