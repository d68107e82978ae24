"""A TCP fault proxy in front of every node's route port, so the harness can cut links.

Each node listens for routes on a private port and advertises the proxy's port instead
(`--cluster_advertise`), so every route connection between two nodes crosses exactly one
proxy: the one in front of the node that was dialed. The proxy learns who dialed by finding
the process that owns the connecting socket (its inode by a sock_diag lookup -> /proc/<pid>/fd), which
works for clusterd and nats-server alike without parsing their route protocol.

A blocked direction (src -> dst) is *stalled*, not dropped: the proxy stops reading from src's
side, bytes wait in the kernel buffers and the sender's writes eventually block. That is what
a network that silently drops packets looks like to TCP (retransmits, no RST), and healing
delivers the delayed bytes like a recovered network, so no route stream is ever corrupted.
Nodes notice a partition only through their own ping/heartbeat timeouts.
"""
from __future__ import annotations

import asyncio
import os
import socket
import struct
import sys


_NETLINK_SOCK_DIAG = 4
_SOCK_DIAG_BY_FAMILY = 20
_NLM_F_REQUEST = 1
_INET_DIAG_NOCOOKIE = 0xFFFFFFFF
_LOOPBACK_V4 = socket.inet_aton("127.0.0.1") + bytes(12)
_LOOPBACK_V6 = socket.inet_pton(socket.AF_INET6, "::ffff:127.0.0.1")  # a dual-stack socket


def _inode_of(local_port: int, remote_port: int) -> str | None:
    """The socket inode of the loopback TCP connection 127.0.0.1:local_port -> :remote_port.

    Asked of the kernel by its exact 4-tuple over NETLINK_SOCK_DIAG, one lookup. Reading
    /proc/net/tcp instead costs a walk of every socket on the machine (140 ms with the
    4,000 sockets of a restart storm); the proxy does this for each accepted connection on
    its single event loop, and in a 5-node soak it fell behind the nodes' route redials,
    starving every proxied link for good."""
    for family, address in ((socket.AF_INET, _LOOPBACK_V4), (socket.AF_INET6, _LOOPBACK_V6)):
        inode = _diag_inode(family, address, local_port, remote_port)
        if inode:
            return inode
    return None


def _diag_inode(family: int, address: bytes, local_port: int, remote_port: int) -> str | None:
    sockid = struct.pack("!HH", local_port, remote_port) + address + address
    sockid += struct.pack("=III", 0, _INET_DIAG_NOCOOKIE, _INET_DIAG_NOCOOKIE)
    # inet_diag_req_v2: family, protocol, ext, pad, states (all), then the socket id.
    request = struct.pack("=BBBBI", family, socket.IPPROTO_TCP, 0, 0, 0xFFFFFFFF) + sockid
    header = struct.pack("=IHHII", 16 + len(request), _SOCK_DIAG_BY_FAMILY, _NLM_F_REQUEST, 1, 0)
    try:
        with socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, _NETLINK_SOCK_DIAG) as nl:
            nl.settimeout(1)
            nl.send(header + request)
            reply = nl.recv(65536)
    except OSError:
        return None
    if len(reply) < 16:
        return None
    msg_type = struct.unpack_from("=H", reply, 4)[0]
    if msg_type != _SOCK_DIAG_BY_FAMILY:
        return None  # NLMSG_ERROR: no such socket (the dialer already closed it)
    # inet_diag_msg after the 16-byte header: family, state, timer, retrans (4), socket id
    # (48), expires, rqueue, wqueue, uid, inode.
    inode = struct.unpack_from("=I", reply, 16 + 4 + 48 + 16)[0]
    return str(inode) if inode else None


def owner_of_connection(peer_port: int, proxy_port: int, pids: dict[int, str]) -> str | None:
    """The node name (value of `pids`) whose process owns the dialing side of a connection."""
    inode = _inode_of(peer_port, proxy_port)
    if inode is None:
        return None
    target = f"socket:[{inode}]"
    for pid, name in pids.items():
        fd_dir = f"/proc/{pid}/fd"
        try:
            for fd in os.listdir(fd_dir):
                try:
                    if os.readlink(os.path.join(fd_dir, fd)) == target:
                        return name
                except OSError:
                    continue
        except OSError:
            continue
    return None


class LinkTable:
    """Which directed links are cut. `blocked` holds (src, dst) pairs: bytes from src to dst
    are stalled. A symmetric partition blocks both directions."""

    def __init__(self) -> None:
        self.blocked: set[tuple[str, str]] = set()
        self.changed = asyncio.Event()

    def set(self, blocked: set[tuple[str, str]]) -> None:
        self.blocked = set(blocked)
        self.changed.set()
        self.changed = asyncio.Event()

    def heal(self) -> None:
        self.set(set())

    def allows(self, src: str, dst: str) -> bool:
        return (src, dst) not in self.blocked


class RouteProxy:
    """Listens on `listen_port`, forwards to the node `name` at `target_port`."""

    def __init__(self, name: str, target_port: int, links: LinkTable, pids: dict[int, str]):
        self.name = name
        self.target_port = target_port
        self.links = links
        self.pids = pids  # live pid -> node name, maintained by the cluster
        self.server: asyncio.base_events.Server | None = None
        self.listen_port = 0
        self.tasks: set[asyncio.Task] = set()
        self.unknown_dialers = 0
        self.accepted = 0

    async def start(self, listen_port: int) -> None:
        self.server = await asyncio.start_server(self._accept, "127.0.0.1", listen_port, reuse_address=True)
        self.listen_port = self.server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self.server:
            self.server.close()
        for t in list(self.tasks):
            t.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        self.tasks.add(task)
        try:
            self.accepted += 1
            peer_port = writer.get_extra_info("peername")[1]
            src = None
            for _ in range(20):  # the dialer's fd shows up in /proc at once; retry a moment anyway
                src = owner_of_connection(peer_port, self.listen_port, self.pids)
                if src:
                    break
                await asyncio.sleep(0.01)
            # A dialer gone before we found it (a node closes a route it finds redundant the
            # moment it connects, before sending a byte) can carry nothing a cut would miss: only
            # a connection that sends data unattributed counts (`_pump`).
            unknown = src is None
            if unknown:
                src = "?"
            try:
                ur, uw = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", self.target_port), 2)
            except (OSError, asyncio.TimeoutError):
                writer.close()
                return
            try:
                await asyncio.gather(self._pump(reader, uw, src, self.name, unattributed=unknown),
                                     self._pump(ur, writer, self.name, src), return_exceptions=True)
            finally:
                for w in (uw, writer):
                    w.close()
        except asyncio.CancelledError:
            writer.close()  # the proxy is closing: end quietly (this task belongs to the server)
        finally:
            self.tasks.discard(task)

    async def _pump(self, r: asyncio.StreamReader, w: asyncio.StreamWriter, src: str, dst: str,
                    unattributed: bool = False) -> None:
        try:
            while True:
                while not self.links.allows(src, dst):
                    await self.links.changed.wait()
                data = await r.read(65536)
                if not data:
                    break
                if unattributed:
                    self.unknown_dialers += 1
                    unattributed = False
                while not self.links.allows(src, dst):  # cut while the read was pending: hold the bytes
                    await self.links.changed.wait()
                w.write(data)
                await w.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            try:
                w.write_eof()
            except (OSError, RuntimeError):
                pass


# The compat harness's free_port: it never hands out a port twice in one process (a repeat
# gave two listeners of one cluster the same port and killed a node at start).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "compat"))
from serverproc import free_port  # noqa: E402,F401 - re-exported for cluster.py
