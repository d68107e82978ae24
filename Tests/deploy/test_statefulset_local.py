"""The Kubernetes StatefulSet (deploy/kubernetes) and the Helm chart, run as three local
processes with exactly their config and args (see podsim.py for the few, documented
differences of running three pods on one machine): they must mesh by the headless Service's
DNS names, serve /healthz, carry messages across nodes, create the declared streams, and
stop gracefully within the pod's termination grace period."""
from __future__ import annotations

import glob
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from podsim import ComposeSim, LocalCluster, RawNats, StatefulSetSim, load_docs

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="needs Linux: every 127/8 address is local there")


def _run(sim: LocalCluster, check) -> None:
    try:
        sim.start()
        sim.wait_meshed()
        check(sim)
        codes = sim.stop()
        assert codes == [0] * len(sim.pods), \
            f"graceful stop within the grace period expected, got {codes} (None = would be SIGKILLed)"
    finally:
        sim.close()


def _cross_node_delivery(sim: LocalCluster, token: str | None = None) -> None:
    first, last = sim.pods[0], sim.pods[-1]
    sub = RawNats(last.ip, last.ports["client"], token)
    pub = RawNats(first.ip, first.ports["client"], token)
    try:
        sub.send("SUB deploy.check 1\r\n")
        sub.flush()
        got = None
        for attempt in range(50):  # interest reaches the other node asynchronously (RS+)
            pub.send(f"PUB deploy.check {len(str(attempt))}\r\n{attempt}\r\n")
            pub.flush()
            got = sub.next_msg(timeout=0.1)
            if got:
                break
        assert got is not None and got[0] == "deploy.check", "a message published on the first pod reaches the last"
    finally:
        sub.close()
        pub.close()


def test_kubernetes_manifests_form_a_cluster(clusterd_bin: str) -> None:
    texts = [open(f).read() for f in sorted(glob.glob(os.path.join(ROOT, "deploy", "kubernetes", "*.yaml")))]
    sim = StatefulSetSim(load_docs(texts), clusterd_bin, seed=os.getpid())
    assert sim.replicas == 3 and [p for p in sim.ports] == ["client", "cluster", "monitor"]

    def check(sim: StatefulSetSim) -> None:
        for i, p in enumerate(sim.pods):
            assert p.name == f"clusterd-{i}"
            status, varz = p.http("/varz")
            assert status == 200 and varz["server_name"] == p.name, "--server_name $(POD_NAME)"
            assert varz["cluster"]["name"] == "clusterd"
            assert p.http("/jsz")[0] == 200, "JetStream is on (store_dir on the data volume)"
            assert "CLUSTERD_HOSTS_FILE" in p.log_text(), "the seam announces itself"
        _cross_node_delivery(sim)

    _run(sim, check)


def test_helm_chart_with_declared_streams_and_token_auth(clusterd_bin: str, helm_bin: str) -> None:
    chart = os.path.join(ROOT, "deploy", "helm", "clusterd")
    rendered = subprocess.run([helm_bin, "template", "demo", chart, "-f", os.path.join(chart, "ci", "streams-values.yaml")],
                              capture_output=True, text=True, check=True).stdout
    sim = StatefulSetSim(load_docs([rendered]), clusterd_bin, seed=os.getpid() + 1)
    assert sim.name == "demo-clusterd" and sim.service == "demo-clusterd-headless"

    def check(sim: StatefulSetSim) -> None:
        _cross_node_delivery(sim, token="t0ken")
        for p in sim.pods:
            nc = RawNats(p.ip, p.ports["client"], "t0ken")
            try:
                info = None
                for _ in range(100):  # applied right after start; bounded wait
                    reply = nc.request("$JS.API.STREAM.INFO.ORDERS")
                    info = json.loads(reply) if reply else {}
                    if "config" in info:
                        break
                    nc.next_msg(timeout=0.05)
                cfg = info.get("config", {})
                assert cfg.get("subjects") == ["orders.>"], info
                assert cfg.get("max_age") == 72 * 3600 * 10**9
                assert cfg.get("duplicate_window") == 120 * 10**9
                assert cfg.get("max_bytes") == 1 << 30
                assert cfg.get("metadata", {}).get("owner") == 'team "a" > b'
            finally:
                nc.close()
            assert cfg.get("num_replicas") == 3
            cluster = info.get("cluster", {})
            assert sorted([cluster.get("leader")] + [r["name"] for r in cluster.get("replicas", [])]) == \
                [q.name for q in sim.pods], f"one R3 stream over the three pods: {cluster}"
        for p in sim.pods:  # each pod's own declarer finishes too (it may be in a retry wait)
            for _ in range(300):
                if 'clusterd_declared_streams{state="ready"} 1' in p.metrics():
                    break
                time.sleep(0.1)
            assert 'clusterd_declared_streams{state="ready"} 1' in p.metrics(), p.log_text()
        # Every pod applied the same declaration to the one clustered stream: whichever asked
        # first created it, the others found it (or raced to an identical create).
        outcomes = ["created" if "Declared stream 'ORDERS' created" in p.log_text() else
                    "up to date" if "Declared stream 'ORDERS' is up to date" in p.log_text() else "?"
                    for p in sim.pods]
        assert "?" not in outcomes and "created" in outcomes, outcomes

    _run(sim, check)


def test_helm_chart_five_replicas_bootstrap_one_meta_group(clusterd_bin: str, helm_bin: str) -> None:
    """replicaCount=5 at install: every pod is a seed, so all five agree on the JetStream
    meta group (five members, one leader)."""
    chart = os.path.join(ROOT, "deploy", "helm", "clusterd")
    rendered = subprocess.run([helm_bin, "template", "big", chart, "--set", "replicaCount=5"],
                              capture_output=True, text=True, check=True).stdout
    sim = StatefulSetSim(load_docs([rendered]), clusterd_bin, seed=os.getpid() + 2)
    assert sim.replicas == 5

    def check(sim: LocalCluster) -> None:
        _cross_node_delivery(sim)
        metas = []
        for _ in range(300):  # bounded: the meta group elects its leader after the mesh
            metas = [p.http("/jsz")[1].get("meta_cluster", {}) for p in sim.pods]
            if all(m.get("leader") for m in metas) and len({m["leader"] for m in metas}) == 1:
                break
            time.sleep(0.1)
        assert [m.get("cluster_size") for m in metas] == [5] * 5, metas
        assert len({m.get("leader") for m in metas}) == 1 and metas[0].get("leader"), metas

    _run(sim, check)


def test_kubernetes_statefulset_scaled_to_five_meshes_through_three_seeds(clusterd_bin: str) -> None:
    """`kubectl scale statefulset clusterd --replicas 5` on the plain manifests: pods 3 and 4
    have the three original seeds only and join the mesh through gossip."""
    texts = [open(f).read() for f in sorted(glob.glob(os.path.join(ROOT, "deploy", "kubernetes", "*.yaml")))]
    docs = load_docs(texts)
    docs["StatefulSet"][0]["spec"]["replicas"] = 5
    sim = StatefulSetSim(docs, clusterd_bin, seed=os.getpid() + 5)
    conf = docs["ConfigMap"][0]["data"]["clusterd.conf"]
    assert "clusterd-3." not in conf and "clusterd-2." in conf, "three seeds only"
    _run(sim, lambda sim: _cross_node_delivery(sim))


def test_docker_compose_file_forms_a_cluster(clusterd_bin: str) -> None:
    """docker-compose.yml as `docker-compose config` normalises it: each service's command
    (after the image's entry point, clusterd) with its mounted config, service names as DNS."""
    import shutil as _shutil
    import yaml

    compose = _shutil.which("docker-compose")
    if compose is None:
        pytest.skip("docker-compose not installed (scripts/ensure-deploy-tools.sh installs it)")
    normalized = yaml.safe_load(subprocess.run([compose, "-f", os.path.join(ROOT, "docker-compose.yml"), "config"],
                                               capture_output=True, text=True, check=True, cwd=ROOT).stdout)
    sim = ComposeSim(normalized, clusterd_bin, seed=os.getpid() + 3,
                     ports={"client": 4222, "cluster": 6222, "monitor": 8222})
    assert sim.stop_timeout == 30

    def check(sim: LocalCluster) -> None:
        assert [p.name for p in sim.pods] == ["clusterd-1", "clusterd-2", "clusterd-3"]
        for p in sim.pods:
            assert p.http("/varz")[1]["server_name"] == p.name
            assert p.http("/jsz")[0] == 200
        _cross_node_delivery(sim)

    _run(sim, check)


def _js(p, subject: str, body: bytes = b"", token: str = "t0ken", timeout: float = 1) -> dict:
    nc = RawNats(p.ip, p.ports["client"], token)
    try:
        reply = nc.request(subject, body, timeout=timeout)
        return json.loads(reply) if reply else {}
    finally:
        nc.close()


@pytest.mark.parametrize("how", ["sigterm", "kill"])
def test_helm_chart_r3_stream_survives_losing_a_pod(clusterd_bin: str, helm_bin: str, how: str) -> None:
    """The failure behaviour docs/deploy.md promises for the chart plus an R3 declared
    stream: with the stream leader's pod gone (SIGTERM as in a rolling restart, or kill -9)
    the other two keep taking publishes; the pod, restarted on its volume, catches up."""
    chart = os.path.join(ROOT, "deploy", "helm", "clusterd")
    rendered = subprocess.run([helm_bin, "template", "ha", chart, "-f", os.path.join(chart, "ci", "streams-values.yaml")],
                              capture_output=True, text=True, check=True).stdout
    sim = StatefulSetSim(load_docs([rendered]), clusterd_bin, seed=os.getpid() + 4)

    def acked(p, subject: str) -> dict:
        ack = {}
        for _ in range(30):  # bounded: an election after the loss takes a moment
            # Longer than the 3 s a replica holds a publish while its stream elects a leader: a
            # publish given up on here would still be stored, one more than the count below.
            ack = _js(p, subject, b"x", timeout=5)
            if "seq" in ack and "error" not in ack:
                return ack
        raise AssertionError(f"no PubAck from {p.name}: {ack}")

    def check(sim: LocalCluster) -> None:
        info = {}
        for _ in range(100):
            info = _js(sim.pods[0], "$JS.API.STREAM.INFO.ORDERS")
            if info.get("cluster", {}).get("leader"):
                break
            time.sleep(0.1)
        for p in sim.pods:
            acked(p, "orders.before")
        leader = next(p for p in sim.pods if p.name == info["cluster"]["leader"])
        if how == "kill":
            leader.proc.kill()
        else:
            leader.proc.send_signal(signal.SIGTERM)
        assert leader.proc.wait(timeout=sim.stop_timeout) in (0, -signal.SIGKILL)
        for p in [p for p in sim.pods if p is not leader]:
            acked(p, "orders.during")
        sim.restart(leader)
        replicas, local = [], {}
        for _ in range(300):  # bounded: the restarted replica replays its log and catches up
            try:
                replicas = _js(leader, "$JS.API.STREAM.INFO.ORDERS").get("cluster", {}).get("replicas", [])
                local = leader.http("/jsz")[1]
            except OSError:  # not listening yet
                pass
            if len(replicas) == 2 and all(r.get("current") for r in replicas) and local.get("messages") == 5:
                break
            time.sleep(0.1)
        problems = [l for l in leader.log_text().splitlines() if "Precondition" in l or "Fatal" in l or "[ERR]" in l]
        assert local.get("messages") == 5, \
            f"3 before + 2 during the outage in the restarted pod's replica: {local}; exited: {leader.proc.poll()}; {problems}"
        assert all(r.get("current") for r in replicas), replicas
        sim.wait_meshed()

    _run(sim, check)
