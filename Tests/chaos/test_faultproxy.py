"""The route fault proxy: it names the process that dialed, stalls a cut direction without
losing or reordering bytes, and lets the other direction flow (asymmetric partitions)."""
from __future__ import annotations

import asyncio
import os
import subprocess
import sys

from faultproxy import LinkTable, RouteProxy

# A child process that dials the proxy, then echoes each line it is sent with "dialer:" prefix
# and prints what it received on stdout.
DIALER = r"""
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
f = s.makefile("rwb")
f.write(b"hello\n"); f.flush()
for line in f:
    sys.stdout.write(line.decode()); sys.stdout.flush()
    f.write(b"dialer:" + line); f.flush()
"""


async def run_case() -> None:
    received: list[bytes] = []
    server_writer: list[asyncio.StreamWriter] = []

    async def on_conn(r, w):
        server_writer.append(w)
        while line := await r.readline():
            received.append(line)

    target = await asyncio.start_server(on_conn, "127.0.0.1", 0)
    links = LinkTable()
    pids: dict[int, str] = {}
    proxy = RouteProxy("b", target.sockets[0].getsockname()[1], links, pids)
    await proxy.start(0)
    child = subprocess.Popen([sys.executable, "-c", DIALER, str(proxy.listen_port)],
                             stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
    pids[child.pid] = "a"
    try:
        for _ in range(400):  # bounded wait (20 s), not a timing assertion
            if received:
                break
            await asyncio.sleep(0.05)
        assert received == [b"hello\n"]
        assert proxy.unknown_dialers == 0
        w = server_writer[0]
        # b -> a cut: lines from b wait in the proxy; a -> b still flows.
        links.set({("b", "a")})
        w.write(b"one\n")
        await w.drain()
        await asyncio.sleep(0.3)
        assert received == [b"hello\n"]  # no echo: "one" has not reached a
        links.heal()
        for _ in range(400):  # bounded wait (20 s), not a timing assertion
            if len(received) == 2:
                break
            await asyncio.sleep(0.05)
        assert received == [b"hello\n", b"dialer:one\n"]
        # a -> b cut: a gets "two" and echoes, the echo is held until heal.
        links.set({("a", "b")})
        w.write(b"two\n")
        await w.drain()
        await asyncio.sleep(0.3)
        assert len(received) == 2
        links.heal()
        for _ in range(400):  # bounded wait (20 s), not a timing assertion
            if len(received) == 3:
                break
            await asyncio.sleep(0.05)
        assert received[2] == b"dialer:two\n"
    finally:
        child.kill()
        child.wait()
        await proxy.close()
        target.close()


def test_proxy_identifies_dialer_and_stalls_directions():
    asyncio.run(run_case())


def test_free_port_never_hands_out_a_port_twice():
    # The four ports of each node of a cluster come from here; a repeat killed a node at start.
    from faultproxy import free_port
    ports = [free_port() for _ in range(300)]
    assert len(set(ports)) == len(ports)


def test_dialer_lookup_is_exact_and_covers_dual_stack_sockets():
    # The lookup asks the kernel for one 4-tuple: the dialing socket of a plain IPv4 and of an
    # IPv4-mapped IPv6 connection is found, a connection that does not exist is not.
    import socket
    from faultproxy import owner_of_connection
    for family, address in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::ffff:127.0.0.1")):
        with socket.socket(family) as server, socket.socket(family) as dialer:
            server.bind((address, 0))
            server.listen()
            port = server.getsockname()[1]
            dialer.connect((address, port))
            accepted, _ = server.accept()
            with accepted:
                local = dialer.getsockname()[1]
                assert owner_of_connection(local, port, {os.getpid(): "me"}) == "me"
                assert owner_of_connection(local, port, {1: "init"}) is None
                assert owner_of_connection(local, port + 1, {os.getpid(): "me"}) is None


def test_unattributed_dialer_counts_only_once_it_sends():
    # A node may close a redundant route dial the moment it connects, before a byte, and be gone
    # before the proxy finds its owner: nothing crossed, nothing a cut could miss. One that
    # sends data without an owner the proxy knows is what "unidentified" must report.
    async def case() -> None:
        target = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        proxy = RouteProxy("b", target.sockets[0].getsockname()[1], LinkTable(), {})
        await proxy.start(0)
        try:
            _, w = await asyncio.open_connection("127.0.0.1", proxy.listen_port)
            w.close()
            for _ in range(400):  # bounded wait (20 s) until the proxy is done with it
                if proxy.accepted == 1 and not proxy.tasks:
                    break
                await asyncio.sleep(0.05)
            assert proxy.accepted == 1 and proxy.unknown_dialers == 0
            _, w = await asyncio.open_connection("127.0.0.1", proxy.listen_port)
            w.write(b"INFO {}\r\n")
            await w.drain()
            for _ in range(400):  # bounded wait (20 s)
                if proxy.unknown_dialers:
                    break
                await asyncio.sleep(0.05)
            assert proxy.unknown_dialers == 1
            w.close()
        finally:
            await proxy.close()
            target.close()

    asyncio.run(case())
