"""The chart with `tls.enabled`: the rendered `tls {}` block (nats-server's keys) and the
mounted certificate Secret serve clients over TLS on every pod."""
from __future__ import annotations

import os
import ssl
import subprocess
import sys
import tempfile

import yaml

from podsim import RawNats, StatefulSetSim, load_docs
from test_statefulset_local import ROOT, _run

sys.path.insert(0, os.path.join(ROOT, "Tests", "compat"))
from tlscerts import Certs  # noqa: E402  (openssl-made test certificates, shared with the compat suite)


def test_helm_chart_tls_serves_clients_over_tls(clusterd_bin: str, helm_bin: str) -> None:
    certs = Certs(tempfile.mkdtemp(prefix="deploy-tls-"))
    chart = os.path.join(ROOT, "deploy", "helm", "clusterd")
    rendered = subprocess.run([helm_bin, "template", "sec", chart, "--set", "tls.enabled=true",
                               "--set", "tls.secretName=sec-tls"], capture_output=True, text=True, check=True).stdout
    assert 'cert_file: "/etc/clusterd/tls/tls.crt"' in rendered
    # What `kubectl create secret tls sec-tls --cert ... --key ...` would hold.
    with open(certs.path("server.pem")) as c, open(certs.path("server-key.pem")) as k:
        secret = {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
                  "metadata": {"name": "sec-tls"}, "stringData": {"tls.crt": c.read(), "tls.key": k.read()}}
    sim = StatefulSetSim(load_docs([rendered, yaml.safe_dump(secret)]), clusterd_bin, seed=os.getpid() + 6)
    ctx = ssl.create_default_context(cafile=certs.path("ca.pem"))

    def check(sim) -> None:
        first, last = sim.pods[0], sim.pods[-1]
        sub = RawNats(last.ip, last.ports["client"], tls=ctx)
        pub = RawNats(first.ip, first.ports["client"], tls=ctx)
        try:
            assert sub.info.get("tls_required") is True
            sub.send("SUB secure.x 1\r\n")
            sub.flush()
            got = None
            for attempt in range(50):  # interest reaches the other pod asynchronously
                pub.send("PUB secure.x 2\r\nhi\r\n")
                pub.flush()
                got = sub.next_msg(timeout=0.1)
                if got:
                    break
            assert got == ("secure.x", b"hi")
        finally:
            sub.close()
            pub.close()

    _run(sim, check)
