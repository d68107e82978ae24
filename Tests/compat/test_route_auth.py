"""Route authorization (`cluster { authorization { user, password, timeout } }`), the same
checks against nats-server and clusterd: the route port says `auth_required`, a peer that does
not log in first (no CONNECT, no or wrong credentials, silence) gets `-ERR 'Authorization
Violation'` or `'Authentication Timeout'` and is closed; a node whose route URL carries the
credentials forms a route, one with a wrong password does not."""
from __future__ import annotations

import json
import socket
import time
import urllib.request

import pytest

from serverproc import ServerProcess, free_port

pytestmark = pytest.mark.security


def _node(binary: str, tmp_path, name: str, routes: list[str] = (), auth: bool = True) -> ServerProcess:
    cport = free_port()
    text = f"server_name: {name}\ncluster {{\n  name: rauth\n  listen: 127.0.0.1:{cport}\n"
    if auth:
        text += "  authorization { user: ruser, password: s3cret, timeout: 1 }\n"
    if routes:
        text += "  routes: [" + ", ".join(routes) + "]\n"
    conf = tmp_path / f"{name}.conf"
    conf.write_text(text + "}\n")
    srv = ServerProcess(binary, ["-c", str(conf)])
    srv.cluster_port = cport
    return srv


def _read_until_closed(s: socket.socket, seconds: float = 5.0) -> bytes:
    s.settimeout(seconds)
    out = b""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return out
            out += chunk
    except socket.timeout:
        return out + b"<still open>"


def _num_routes(srv: ServerProcess) -> int:
    with urllib.request.urlopen(srv.monitor_url + "/routez", timeout=5) as r:
        return json.loads(r.read())["num_routes"]


@pytest.fixture
def node(server_binary, tmp_path):
    started: list[ServerProcess] = []

    def make(name: str, routes: list[str] = (), auth: bool = True) -> ServerProcess:
        srv = _node(server_binary, tmp_path, name, routes, auth)
        started.append(srv)
        return srv.start()

    try:
        yield make
    finally:
        for srv in started:
            srv.close()


@pytest.mark.parametrize("first", [
    b'INFO {"id":"XYZ","server_id":"XYZ","cluster":"rauth"}\r\n',
    b'CONNECT {"verbose":false,"name":"XYZ","cluster":"rauth"}\r\nINFO {"id":"XYZ","server_id":"XYZ","cluster":"rauth"}\r\n',
    b'CONNECT {"verbose":false,"user":"ruser","pass":"bad","name":"XYZ","cluster":"rauth"}\r\n',
], ids=["info-first", "no-credentials", "wrong-password"])
def test_routePort_withoutValidLogin_authorizationViolation(node, first):
    srv = node("a")
    with socket.create_connection(("127.0.0.1", srv.cluster_port), timeout=5) as s:
        s.settimeout(5)
        info = s.recv(65536)
        assert info.startswith(b"INFO ")
        assert json.loads(info[5:].split(b"\r\n")[0])["auth_required"] is True
        s.sendall(first)
        out = _read_until_closed(s)
    assert b"-ERR 'Authorization Violation'\r\n" in out, out
    assert not out.endswith(b"<still open>"), out


def test_routePort_silentPeer_authenticationTimeout(node):
    srv = node("a")
    with socket.create_connection(("127.0.0.1", srv.cluster_port), timeout=5) as s:
        out = _read_until_closed(s)
    assert out.startswith(b"INFO ")
    assert b"-ERR 'Authentication Timeout'\r\n" in out, out
    assert not out.endswith(b"<still open>"), out
    with urllib.request.urlopen(srv.monitor_url + "/varz", timeout=5) as r:
        assert json.loads(r.read())["cluster"]["auth_timeout"] == 1


def test_routes_withTheCredentials_form_aWrongPasswordDoesNot(node):
    a = node("a")
    node("b", [f"nats://ruser:s3cret@127.0.0.1:{a.cluster_port}"])
    deadline = time.monotonic() + 10
    while _num_routes(a) < 1:
        assert time.monotonic() < deadline, a.stderr_text()[-2000:]
        time.sleep(0.05)
    c = node("c", [f"nats://ruser:wrong@127.0.0.1:{a.cluster_port}"], auth=False)
    deadline = time.monotonic() + 10
    while 'authentication error - User "ruser"' not in a.stderr_text():
        assert time.monotonic() < deadline, a.stderr_text()[-2000:]
        time.sleep(0.05)
    deadline = time.monotonic() + 10
    while "Route Error 'Authorization Violation'" not in c.stderr_text():
        assert time.monotonic() < deadline, c.stderr_text()[-2000:]
        time.sleep(0.05)
    assert _num_routes(c) == 0


def test_clusterFlagWithCredentials_setsTheRouteAuthorization(server_binary):
    cport = free_port()
    srv = ServerProcess(server_binary, ["--cluster", f"nats://ruser:s3cret@127.0.0.1:{cport}"])
    try:
        srv.start()
        with socket.create_connection(("127.0.0.1", cport), timeout=5) as s:
            s.settimeout(5)
            info = s.recv(65536)
            assert json.loads(info[5:].split(b"\r\n")[0])["auth_required"] is True
            s.sendall(b'CONNECT {"verbose":false,"name":"XYZ","cluster":"c"}\r\n')
            out = _read_until_closed(s)
        assert b"-ERR 'Authorization Violation'\r\n" in out, out
    finally:
        srv.close()
