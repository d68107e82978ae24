"""A raw-socket NATS client connection for byte-exact protocol tests.

Every read is bounded by a timeout so a silent or hung server fails the test instead of
hanging it. Two synchronisation styles:
- `roundtrip(op)`: send op + PING, return everything the server sent before the PONG
  (proves the connection is still open and nothing else was sent);
- `until_closed()`: everything the server sent until it closed the connection.
"""
from __future__ import annotations

import json
import socket
import time

READ_TIMEOUT_S = 3.0

# Protocol 0 on purpose: protocol-1 clients get a second INFO after their first PONG
# (nats-server 2.15), which would only add noise to exact-byte expectations.
CONNECT_QUIET = b'CONNECT {"verbose":false,"pedantic":false,"headers":true,"no_responders":true}\r\n'


class ServerClosed(AssertionError):
    pass


class RawConn:
    def __init__(self, port: int, host: str = "127.0.0.1"):
        self.sock = socket.create_connection((host, port), timeout=READ_TIMEOUT_S)
        self.buf = b""
        self.closed = False
        line = self.read_until(b"\r\n")
        assert line.startswith(b"INFO "), f"first line is not INFO: {line!r}"
        self.info = json.loads(line[5:].strip())

    # -- sending -------------------------------------------------------------------------
    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def connect(self, connect_line: bytes = CONNECT_QUIET) -> "RawConn":
        """Send CONNECT and sync; asserts the server answered nothing but PONG."""
        got = self.roundtrip(connect_line)
        assert got in (b"", b"+OK\r\n"), f"unexpected reply to CONNECT: {got!r}"
        return self

    # -- receiving -----------------------------------------------------------------------
    def _fill(self, deadline: float) -> bool:
        """Read one chunk; False on timeout, raises ServerClosed on EOF."""
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        self.sock.settimeout(left)
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            return False
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            self.closed = True
            raise ServerClosed(f"server closed the connection; unread bytes: {self.buf!r}")
        self.buf += chunk
        return True

    def read_until(self, token: bytes, timeout: float = READ_TIMEOUT_S) -> bytes:
        """Return bytes up to and including `token`."""
        deadline = time.monotonic() + timeout
        while token not in self.buf:
            if not self._fill(deadline):
                raise AssertionError(f"timed out waiting for {token!r}; got {self.buf!r}")
        i = self.buf.index(token) + len(token)
        out, self.buf = self.buf[:i], self.buf[i:]
        return out

    def read_exactly(self, n: int, timeout: float = READ_TIMEOUT_S) -> bytes:
        deadline = time.monotonic() + timeout
        while len(self.buf) < n:
            if not self._fill(deadline):
                raise AssertionError(f"timed out waiting for {n} bytes; got {self.buf!r}")
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_frame(self, timeout: float = READ_TIMEOUT_S) -> tuple[bytes, bytes]:
        """Read one server op: (control line, payload). Payload is b"" for ops without a body;
        for HMSG it is header block + body."""
        line = self.read_until(b"\r\n", timeout)
        if line.startswith((b"MSG ", b"HMSG ")):
            size = int(line.split()[-1])
            return line, self.read_exactly(size + 2, timeout)[:-2]
        return line, b""

    def roundtrip(self, data: bytes, timeout: float = READ_TIMEOUT_S) -> bytes:
        """Send data + PING; return what arrived before the PONG."""
        self.send(data + b"PING\r\n")
        got = self.read_until(b"PONG\r\n", timeout)
        return got[: -len(b"PONG\r\n")]

    def until_closed(self, timeout: float = READ_TIMEOUT_S) -> bytes:
        """Return everything until the server closes; fails if it stays open."""
        deadline = time.monotonic() + timeout
        try:
            while True:
                if not self._fill(deadline):
                    raise AssertionError(f"server kept the connection open; got {self.buf!r}")
        except ServerClosed:
            out, self.buf = self.buf, b""
            return out

    def send_and_expect_close(self, data: bytes, timeout: float = READ_TIMEOUT_S) -> bytes:
        try:
            self.send(data)
        except (BrokenPipeError, ConnectionResetError):
            pass
        return self.until_closed(timeout)

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self) -> "RawConn":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
