"""TLS certificate reload on SIGHUP with nats-py, proven against nats-server and clusterd:
new connections get the new certificate, connections made before stay up, and a certificate
that does not load fails the reload ("Failed to reload server configuration") with the old
one still served. Certificates are made with openssl at test time."""
from __future__ import annotations

import shutil
import signal
import time

import pytest

from serverproc import ServerProcess
from test_tls import client_ctx, pubsub_roundtrip
from tlscerts import Certs, _leaf

pytestmark = pytest.mark.security


@pytest.fixture(scope="module")
def certs(tmp_path_factory) -> Certs:
    c = Certs(str(tmp_path_factory.mktemp("tlsreload")))
    # A server certificate from the second CA: what the server rotates to.
    _leaf(c.dir, "server2", "rogue-ca", "localhost",
          "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n")
    return c


def _install(certs: Certs, name: str) -> None:
    shutil.copyfile(certs.path(f"{name}.pem"), certs.path("live.pem"))
    shutil.copyfile(certs.path(f"{name}-key.pem"), certs.path("live-key.pem"))


@pytest.fixture
def tls_server(server_binary, certs, tmp_path):
    _install(certs, "server")
    conf = tmp_path / "tls.conf"
    conf.write_text('tls { cert_file: "%s", key_file: "%s" }\n' % (certs.path("live.pem"), certs.path("live-key.pem")))
    srv = ServerProcess(server_binary, ["-c", str(conf)])
    try:
        yield srv.start()
    finally:
        srv.close()


async def _connect_within(connect, url, ctx, seconds=5.0):
    """A connection, retried while the server may still be applying the SIGHUP (bounded)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            return await connect(url, tls=ctx)
        except Exception:
            if time.monotonic() > deadline:
                raise


def _wait_log(srv: ServerProcess, text: str, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while text not in srv.stderr_text():
        assert time.monotonic() < deadline, f"no {text!r} in the log:\n{srv.stderr_text()[-2000:]}"
        time.sleep(0.05)


async def test_sighup_newConnectionsGetTheNewCertificate_oldOnesStayUp(tls_server, connect, certs):
    old_a = await connect(tls_server.url, tls=client_ctx(certs))
    old_b = await connect(tls_server.url, tls=client_ctx(certs))
    _install(certs, "server2")
    tls_server.proc.send_signal(signal.SIGHUP)
    new = await _connect_within(connect, tls_server.url, client_ctx(certs, ca="rogue-ca.pem"))
    with pytest.raises(Exception):
        await connect(tls_server.url, tls=client_ctx(certs))  # the old CA no longer matches
    assert await pubsub_roundtrip(old_a, old_b) == b"over tls"
    assert await pubsub_roundtrip(new, old_a, "secure.mixed") == b"over tls"


async def test_sighup_withABadCertificate_keepsTheOldOne(tls_server, connect, certs):
    with open(certs.path("live.pem"), "w") as f:
        f.write("not a certificate\n")
    tls_server.proc.send_signal(signal.SIGHUP)
    _wait_log(tls_server, "Failed to reload server configuration")
    a = await connect(tls_server.url, tls=client_ctx(certs))
    b = await connect(tls_server.url, tls=client_ctx(certs))
    assert await pubsub_roundtrip(a, b) == b"over tls"
