"""TLS for clients, with nats-py, proven against nats-server with the same certificates:
TLS-required servers, client certificate verification, an untrusted CA, and a server that
also accepts plaintext (allow_non_tls)."""
from __future__ import annotations

import json
import socket
import ssl

import pytest

from tlscerts import Certs


@pytest.fixture(scope="module")
def certs(tmp_path_factory) -> Certs:
    return Certs(str(tmp_path_factory.mktemp("tls")))


def client_ctx(certs: Certs, *, cert: str | None = None, ca: str = "ca.pem") -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=certs.path(ca))
    if cert:
        ctx.load_cert_chain(certs.path(f"{cert}.pem"), certs.path(f"{cert}-key.pem"))
    return ctx


def tls_flags(certs: Certs, verify: bool = False) -> list[str]:
    args = ["--tls", "--tlscert", certs.path("server.pem"), "--tlskey", certs.path("server-key.pem")]
    if verify:
        args += ["--tlsverify", "--tlscacert", certs.path("ca.pem")]
    return args


def raw_info(port: int) -> dict:
    with socket.create_connection(("127.0.0.1", port), timeout=3) as s:
        buf = b""
        while b"\r\n" not in buf:
            chunk = s.recv(4096)
            if not chunk:
                break
            buf += chunk
    assert buf.startswith(b"INFO "), buf
    return json.loads(buf[5:buf.index(b"\r\n")])


async def pubsub_roundtrip(a, b, subject: str = "secure.x") -> bytes:
    """Publish on `a` until `b` receives. nats-py over TLS can write the flush PING ahead of
    a SUB still in its buffer (seen against nats-server), so one publish after flush() may
    precede the subscription; the retries are bounded."""
    import nats.errors
    sub = await b.subscribe(subject)
    await b.flush()
    for _ in range(20):
        await a.publish(subject, b"over tls")
        await a.flush()
        try:
            return (await sub.next_msg(timeout=0.25)).data
        except nats.errors.TimeoutError:
            continue
    raise AssertionError(f"nothing received on {subject}")


async def test_tlsRequired_infoAndPubSub(make_server, connect, certs):
    srv = make_server(tls_flags(certs))
    info = raw_info(srv.port)
    assert info.get("tls_required") is True
    assert "tls_verify" not in info and "tls_available" not in info
    a = await connect(srv.url, tls=client_ctx(certs))
    b = await connect(srv.url, tls=client_ctx(certs))
    assert await pubsub_roundtrip(a, b) == b"over tls"


async def test_tlsRequired_plaintextClientIsRefused(make_server, connect, certs):
    srv = make_server(tls_flags(certs))
    with pytest.raises(Exception):
        await connect(srv.url)


async def test_untrustedServerCA_failsTheHandshake(make_server, connect, certs):
    srv = make_server(tls_flags(certs))
    with pytest.raises(ssl.SSLError):
        await connect(srv.url, tls=client_ctx(certs, ca="rogue-ca.pem"))


async def test_verify_clientCertificateFromTheCA_isAccepted(make_server, connect, certs):
    srv = make_server(tls_flags(certs, verify=True))
    assert raw_info(srv.port).get("tls_verify") is True
    a = await connect(srv.url, tls=client_ctx(certs, cert="client"))
    b = await connect(srv.url, tls=client_ctx(certs, cert="client"))
    assert await pubsub_roundtrip(a, b) == b"over tls"


@pytest.mark.parametrize("cert", [None, "rogue"], ids=["no_certificate", "certificate_from_other_ca"])
async def test_verify_clientWithoutAGoodCertificate_isRefused(make_server, connect, certs, cert):
    srv = make_server(tls_flags(certs, verify=True))
    with pytest.raises(Exception):
        nc = await connect(srv.url, tls=client_ctx(certs, cert=cert))
        # TLS 1.3: the client may finish before the server checks its certificate; the
        # server's alert then ends the connection before CONNECT's PONG.
        await nc.flush(timeout=2)
    good = await connect(srv.url, tls=client_ctx(certs, cert="client"))
    assert good.is_connected


async def test_allowNonTLS_acceptsBothKindsOfClient(make_server, connect, certs, tmp_path):
    conf = tmp_path / "tls.conf"
    conf.write_text(
        "tls {\n"
        f'  cert_file: "{certs.path("server.pem")}"\n'
        f'  key_file: "{certs.path("server-key.pem")}"\n'
        "  timeout: 2\n"
        "}\n"
        "allow_non_tls: true\n"
    )
    srv = make_server(["-c", str(conf)])
    info = raw_info(srv.port)
    assert info.get("tls_available") is True
    assert "tls_required" not in info
    secure = await connect(srv.url, tls=client_ctx(certs))
    plain = await connect(srv.url)
    assert await pubsub_roundtrip(secure, plain, "mixed.a") == b"over tls"
    assert await pubsub_roundtrip(plain, secure, "mixed.b") == b"over tls"
