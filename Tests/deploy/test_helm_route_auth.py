"""The chart with `routeAuth.enabled`: the rendered `cluster { authorization {} }` block reads
the user and password from the pod's environment (a Secret), the pods mesh (their routes are
DNS names without credentials, so each logs in with the cluster's own), and the route port
refuses a peer without them."""
from __future__ import annotations

import json
import os
import socket
import subprocess

from podsim import StatefulSetSim, load_docs
from test_statefulset_local import ROOT, _cross_node_delivery, _run


def test_helm_chart_routeAuth_meshesAndRefusesOthers(clusterd_bin: str, helm_bin: str) -> None:
    chart = os.path.join(ROOT, "deploy", "helm", "clusterd")
    rendered = subprocess.run([helm_bin, "template", "ra", chart, "--set", "routeAuth.enabled=true",
                               "--set", "routeAuth.user=route", "--set", "routeAuth.password=r0ute-s3cret"],
                              capture_output=True, text=True, check=True).stdout
    assert "password: $CLUSTERD_ROUTE_PASSWORD" in rendered
    assert "r0ute-s3cret" not in rendered.split("kind: ConfigMap", 1)[1].split("---", 1)[0], "secret in the ConfigMap"
    sim = StatefulSetSim(load_docs([rendered]), clusterd_bin, seed=os.getpid() + 7)

    def check(sim) -> None:
        _cross_node_delivery(sim)
        pod = sim.pods[0]
        with socket.create_connection((pod.ip, pod.ports["cluster"]), timeout=5) as s:
            s.settimeout(5)
            info = s.recv(65536)
            assert json.loads(info[5:].split(b"\r\n")[0])["auth_required"] is True
            s.sendall(b'CONNECT {"verbose":false,"user":"route","pass":"guess","name":"X","cluster":"clusterd"}\r\n')
            out = b""
            while chunk := s.recv(65536):
                out += chunk
        assert b"-ERR 'Authorization Violation'" in out, out
        for p in sim.pods:
            assert "authentication error - User \"route\"" not in p.log_text() or p is pod, p.log_text()[-2000:]

    _run(sim, check)
