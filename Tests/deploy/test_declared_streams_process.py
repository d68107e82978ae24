"""Declared streams in a real clusterd process: created at boot, re-applied on SIGHUP when
the list changes, refusals logged (the server keeps serving), config errors fatal."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request

import pytest

from podsim import RawNats


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Node:
    def __init__(self, binary: str, conf: str):
        self.dir = tempfile.mkdtemp(prefix="declared-")
        self.conf = os.path.join(self.dir, "clusterd.conf")
        self.port, self.http = _free_port(), _free_port()
        self.log = os.path.join(self.dir, "stderr.log")
        self.write(conf)
        with open(self.log, "w") as out:
            self.proc = subprocess.Popen([binary, "-c", self.conf, "-a", "127.0.0.1", "-p", str(self.port),
                                          "-m", str(self.http), "--http_host", "127.0.0.1"],
                                         stdout=out, stderr=subprocess.STDOUT, cwd=self.dir)

    def write(self, conf: str) -> None:
        with open(self.conf, "w") as f:
            f.write(conf.replace("@DIR@", self.dir))

    def log_text(self) -> str:
        with open(self.log, errors="replace") as f:
            return f.read()

    def wait_log(self, text: str, count: int = 1) -> None:
        for _ in range(500):  # bounded: 10 s
            if self.log_text().count(text) >= count:
                return
            assert self.proc.poll() is None, f"exited {self.proc.returncode}:\n{self.log_text()}"
            time.sleep(0.02)
        raise AssertionError(f"{text!r} x{count} not logged:\n{self.log_text()}")

    def stream_config(self, name: str) -> dict:
        nc = RawNats("127.0.0.1", self.port)
        try:
            reply = nc.request(f"$JS.API.STREAM.INFO.{name}")
            return json.loads(reply or b"{}").get("config", {})
        finally:
            nc.close()

    def metrics(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.http}/metrics", timeout=2) as r:
            return r.read().decode()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


CONF_V1 = """
jetstream { store_dir: "@DIR@/data" }
streams: [
  { name: ORDERS, subjects: ["orders.>"], max_age: "1h" }
  { name: BROKEN, subjects: ["orders.eu"] }
]
"""

CONF_V2 = """
jetstream { store_dir: "@DIR@/data" }
streams: [
  { name: ORDERS, subjects: ["orders.>"], max_age: "2h" }
  { name: AUDIT, subjects: ["audit.>"], storage: memory }
]
"""


def test_declared_streams_boot_refusal_and_sighup(clusterd_bin: str) -> None:
    node = Node(clusterd_bin, CONF_V1)
    try:
        node.wait_log("Declared stream 'ORDERS' created")
        # Overlapping subjects: refused by the API, logged, the node keeps serving.
        node.wait_log("[ERR] Declared stream 'BROKEN' not applied: STREAM.CREATE refused")
        assert "10065" in node.log_text()
        assert node.stream_config("ORDERS")["max_age"] == 3600 * 10**9
        m = node.metrics()
        assert 'clusterd_declared_streams{state="ready"} 1' in m and 'clusterd_declared_streams{state="failed"} 1' in m

        node.write(CONF_V2)
        node.proc.send_signal(signal.SIGHUP)
        node.wait_log("Declared stream 'ORDERS' updated to its declared config")
        node.wait_log("Declared stream 'AUDIT' created")
        assert node.stream_config("ORDERS")["max_age"] == 2 * 3600 * 10**9
        assert node.stream_config("AUDIT")["storage"] == "memory"

        # An unchanged list is not applied again on the next SIGHUP.
        node.proc.send_signal(signal.SIGHUP)
        node.wait_log("Reloaded server configuration", count=2)
        assert "Declared stream 'ORDERS' is up to date" not in node.log_text()
    finally:
        node.close()
    assert node.proc.returncode == 0


@pytest.mark.parametrize("conf, message", [
    ("streams: [ { name: A } ]", "the config declares streams but JetStream is not enabled"),
    ('jetstream { store_dir: "@DIR@" }\nstreams: [ { name: A, max_age: 2m } ]', "streams[0].max_age"),
    ('jetstream { store_dir: "@DIR@" }\nstreams: [ { name: "a.b" } ]', "can not contain '.'"),
])
def test_bad_stream_declarations_are_fatal_at_start(clusterd_bin: str, conf: str, message: str) -> None:
    node = Node(clusterd_bin, conf)
    try:
        code = node.proc.wait(timeout=15)
    finally:
        node.close()
    assert code != 0
    assert "[FTL]" in node.log_text() and message in node.log_text(), node.log_text()
