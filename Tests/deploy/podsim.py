"""Run a rendered clusterd StatefulSet as local processes, as Kubernetes would run its pods.

From the manifests (ConfigMap, StatefulSet, optional Secret) it takes, unchanged: the config
file text, the container args with `$(VAR)` expanded from the pod's env (fieldRef
metadata.name, secretKeyRef), the ports, the replica count and the route seed names. What
differs, because N pods share one machine here:

- each pod gets its own loopback address (127.A.B.i, Linux routes all of 127/8 locally) and
  the extra flags `-a IP --http_host IP --cluster nats://IP:<cluster port>` to bind there
  (the manifests bind 0.0.0.0, which only one process could);
- the volume mount paths (config, /data) are mapped to per-pod temp directories;
- the headless Service's DNS names (`<pod>.<service>`) are mapped to those addresses with a
  hosts file passed as CLUSTERD_HOSTS_FILE (see docs/deploy.md), not the machine's resolver.

Every process is reaped by `close()`, also after failures.
"""
from __future__ import annotations

import json
import os
import random
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.request

import yaml


def load_docs(texts: list[str]) -> dict[str, list[dict]]:
    by_kind: dict[str, list[dict]] = {}
    for text in texts:
        for d in yaml.safe_load_all(text):
            if d:
                by_kind.setdefault(d["kind"], []).append(d)
    return by_kind


def _bindable(ip: str, ports: list[int]) -> bool:
    for port in ports:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind((ip, port))
            except OSError:
                return False
    return True


def pick_addresses(count: int, ports: list[int], seed: int) -> list[str]:
    """`count` loopback addresses in one 127.A.B.0/24 where every port is free."""
    rng = random.Random(seed)
    for _ in range(50):
        a, b = rng.randrange(1, 255), rng.randrange(0, 255)
        ips = [f"127.{a}.{b}.{i + 1}" for i in range(count)]
        if all(_bindable(ip, ports) for ip in ips):
            return ips
    raise RuntimeError("no free loopback /24 for the pods' fixed ports")


class Pod:
    def __init__(self, name: str, ip: str, ports: dict[str, int], proc: subprocess.Popen, log: str):
        self.name, self.ip, self.ports, self.proc, self.log = name, ip, ports, proc, log

    def http(self, path: str) -> tuple[int, dict]:
        url = f"http://{self.ip}:{self.ports['monitor']}{path}"
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                return r.status, json.loads(r.read() or b"{}")
        except urllib.error.HTTPError as e:
            return e.code, {}
        except (OSError, ValueError):
            return 0, {}

    def metrics(self) -> str:
        url = f"http://{self.ip}:{self.ports['monitor']}/metrics"
        with urllib.request.urlopen(url, timeout=2) as r:
            return r.read().decode()

    def log_text(self) -> str:
        with open(self.log, errors="replace") as f:
            return f.read()


def _seconds(duration: str) -> int:
    """Compose's `1m30s` / `30s` durations, whole seconds."""
    units = {"h": 3600, "m": 60, "s": 1}
    return sum(int(n) * units[u] for n, u in re.findall(r"(\d+)([hms])", str(duration)))


class LocalCluster:
    """Processes started from a deployment description; subclasses say what each gets."""

    def __init__(self, binary: str, seed: int):
        self.binary = os.path.abspath(binary)
        self.seed = seed
        self.tmp = tempfile.mkdtemp(prefix="deploy-sim-")
        self.pods: list[Pod] = []
        self.ports: dict[str, int] = {}
        # How long a SIGTERMed node may take before the orchestrator would SIGKILL it.
        self.stop_timeout = 10

    def _launch(self, name: str, ip: str, args: list[str], env: dict[str, str], hosts: str, cwd: str) -> None:
        args = args + ["-a", ip, "--http_host", ip, "--cluster", f"nats://{ip}:{self.ports['cluster']}"]
        log = os.path.join(cwd, "stderr.log")
        env = {**os.environ, **env, "CLUSTERD_HOSTS_FILE": hosts}
        with open(log, "w") as out:
            proc = subprocess.Popen([self.binary] + args, stdout=out, stderr=subprocess.STDOUT, cwd=cwd, env=env)
        pod = Pod(name, ip, self.ports, proc, log)
        pod.launch = ([self.binary] + args, cwd, env)
        self.pods.append(pod)

    def restart(self, pod: Pod) -> None:
        """Starts a stopped pod again with the same args and volumes (a rescheduled pod that
        keeps its PVC); the log is appended to."""
        assert pod.proc.poll() is not None, "stop or kill the pod first"
        argv, cwd, env = pod.launch
        with open(pod.log, "a") as out:
            pod.proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, cwd=cwd, env=env)

    def _hosts_file(self, entries: list[tuple[str, str]]) -> str:
        hosts = os.path.join(self.tmp, "hosts")
        with open(hosts, "w") as f:
            for ip, name in entries:
                f.write(f"{ip} {name}\n")
        return hosts

    @staticmethod
    def _map_paths(text: str, mounts: list[tuple[str, str]]) -> str:
        """Mounted paths in `text` -> local paths, in one pass (a mapped path is never
        mapped again); `mounts` is longest first so the alternation prefers /etc/x/y."""
        if not mounts:
            return text
        local = dict(mounts)
        pattern = r"(?<![\w./-])(" + "|".join(re.escape(m) for m, _ in mounts) + r")(?=$|[/\s\"',\]}])"
        return re.sub(pattern, lambda m: local[m.group(1)], text, flags=re.M)

    @classmethod
    def _rewrite_files(cls, mounts: list[tuple[str, str]]) -> None:
        """Config files that name mounted paths (store_dir: /data) get the local paths: a file
        mounted by subPath, or the files of a mounted directory (a ConfigMap volume)."""
        for _, local in mounts:
            if os.path.isfile(local):
                files = [local]
            elif os.path.isdir(local):
                files = [os.path.join(local, n) for n in sorted(os.listdir(local)) if os.path.isfile(os.path.join(local, n))]
            else:
                files = []
            for path in files:
                with open(path) as f:
                    text = f.read()
                with open(path, "w") as f:
                    f.write(cls._map_paths(text, mounts))

    def wait_meshed(self, timeout: float = 60) -> None:
        """Until every node serves /healthz and lists a route to every other node (bounded)."""
        deadline = time.monotonic() + timeout
        while True:
            state = {}
            for p in self.pods:
                if p.proc.poll() is not None:
                    raise AssertionError(f"{p.name} exited with {p.proc.returncode}:\n{p.log_text()}")
                health, _ = p.http("/healthz")
                _, routez = p.http("/routez")
                state[p.name] = (health, sorted(r.get("remote_name", "") for r in routez.get("routes", [])))
            want = {p.name: (200, sorted(o.name for o in self.pods if o is not p)) for p in self.pods}
            if state == want:
                return
            if time.monotonic() > deadline:
                logs = "\n".join(f"--- {p.name}\n{p.log_text()[-3000:]}" for p in self.pods)
                raise AssertionError(f"cluster did not form: {state}\n{logs}")
            time.sleep(0.1)

    def stop(self) -> list[int | None]:
        """SIGTERM every node, as the orchestrator does; exit codes (None: still running after
        `stop_timeout`, i.e. it would have been SIGKILLed)."""
        for p in self.pods:
            if p.proc.poll() is None:
                p.proc.send_signal(signal.SIGTERM)
        codes = []
        for p in self.pods:
            try:
                codes.append(p.proc.wait(timeout=max(self.stop_timeout, 1)))
            except subprocess.TimeoutExpired:
                codes.append(None)
        return codes

    def close(self) -> None:
        for p in self.pods:
            if p.proc.poll() is None:
                p.proc.kill()
            try:
                p.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        shutil.rmtree(self.tmp, ignore_errors=True)


class StatefulSetSim(LocalCluster):
    def __init__(self, manifests: dict[str, list[dict]], binary: str, seed: int):
        super().__init__(binary, seed)
        self.docs = manifests
        sts = manifests["StatefulSet"][0]
        self.name = sts["metadata"]["name"]
        self.spec = sts["spec"]
        self.pod_spec = self.spec["template"]["spec"]
        self.container = self.pod_spec["containers"][0]
        self.replicas = int(self.spec["replicas"])
        self.service = self.spec["serviceName"]
        self.ports = {p["name"]: int(p["containerPort"]) for p in self.container["ports"]}
        # The kubelet SIGKILLs after terminationGracePeriodSeconds, which includes preStop.
        grace = int(self.pod_spec.get("terminationGracePeriodSeconds", 30))
        cmd = self.container.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command", [])
        pre_stop = int(cmd[1]) if len(cmd) == 2 and cmd[0] == "sleep" else 0
        self.stop_timeout = grace - pre_stop

    # -- what Kubernetes would give the container ------------------------------------------

    def _secret_value(self, ref: dict) -> str:
        for s in self.docs.get("Secret", []):
            if s["metadata"]["name"] == ref["name"]:
                if ref["key"] in s.get("stringData", {}):
                    return str(s["stringData"][ref["key"]])
        raise KeyError(f"secret {ref['name']}/{ref['key']} not in the manifests")

    def _env(self, pod: str) -> dict[str, str]:
        env = {}
        for e in self.container.get("env", []):
            src = e.get("valueFrom", {})
            if "value" in e:
                env[e["name"]] = str(e["value"])
            elif src.get("fieldRef", {}).get("fieldPath") == "metadata.name":
                env[e["name"]] = pod
            elif "secretKeyRef" in src:
                env[e["name"]] = self._secret_value(src["secretKeyRef"])
            else:
                raise ValueError(f"env {e['name']}: unsupported source {src}")
        return env

    def _mounts(self, pod_dir: str) -> list[tuple[str, str]]:
        """(mountPath, local path) for the config and data volumes, files written."""
        volumes = {v["name"]: v for v in self.pod_spec.get("volumes", [])}
        claims = {c["metadata"]["name"] for c in self.spec.get("volumeClaimTemplates", [])}
        out = []
        for m in self.container.get("volumeMounts", []):
            local = os.path.join(pod_dir, m["name"])
            vol = volumes.get(m["name"], {})
            if "configMap" in vol or "secret" in vol:
                if "configMap" in vol:
                    files = next(c for c in self.docs["ConfigMap"] if c["metadata"]["name"] == vol["configMap"]["name"])["data"]
                else:
                    files = next(c for c in self.docs.get("Secret", [])
                                 if c["metadata"]["name"] == vol["secret"]["secretName"])["stringData"]
                os.makedirs(local, exist_ok=True)
                for key, text in files.items():
                    with open(os.path.join(local, key), "w") as f:
                        f.write(text)
                if "subPath" in m:
                    local = os.path.join(local, m["subPath"])
                out.append((m["mountPath"], local))
            elif m["name"] in claims or "emptyDir" in vol:
                os.makedirs(local, exist_ok=True)
                out.append((m["mountPath"], local))
        # Longest first, so /etc/clusterd/tls maps before /etc/clusterd.
        return sorted(out, key=lambda p: -len(p[0]))

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> "StatefulSetSim":
        names = [f"{self.name}-{i}" for i in range(self.replicas)]
        ips = pick_addresses(self.replicas, sorted(self.ports.values()), self.seed)
        hosts = self._hosts_file([(ip, f"{name}.{self.service}") for name, ip in zip(names, ips)])
        for name, ip in zip(names, ips):
            pod_dir = os.path.join(self.tmp, name)
            os.makedirs(pod_dir)
            mounts = self._mounts(pod_dir)
            self._rewrite_files(mounts)
            env = self._env(name)
            args = [re.sub(r"\$\((\w+)\)", lambda m: env.get(m.group(1), m.group(0)), a)
                    for a in self.container.get("args", [])]
            self._launch(name, ip, [self._map_paths(a, mounts) for a in args], env, hosts, pod_dir)
        return self


class ComposeSim(LocalCluster):
    """docker-compose.yml (as `docker-compose config` normalises it) run the same way: each
    service's command after the image's entry point, its bind-mounted config file, a temp
    directory for its named volume, service names as the DNS names."""

    def __init__(self, normalized: dict, binary: str, seed: int, ports: dict[str, int]):
        super().__init__(binary, seed)
        self.services = normalized["services"]
        self.ports = ports
        self.stop_timeout = min(_seconds(s.get("stop_grace_period", "10s")) for s in self.services.values())

    def start(self) -> "ComposeSim":
        names = sorted(self.services)
        ips = pick_addresses(len(names), sorted(self.ports.values()), self.seed)
        hosts = self._hosts_file(list(zip(ips, names)))
        for name, ip in zip(names, ips):
            svc = self.services[name]
            node_dir = os.path.join(self.tmp, name)
            os.makedirs(node_dir)
            mounts = []
            for v in svc.get("volumes", []):
                src, target = (v["source"], v["target"]) if isinstance(v, dict) else v.split(":")[:2]
                local = os.path.join(node_dir, target.strip("/").replace("/", "_"))
                if src.startswith("/") and os.path.isfile(src):
                    shutil.copy(src, local)
                else:
                    os.makedirs(local)
                mounts.append((target, local))
            mounts.sort(key=lambda p: -len(p[0]))
            self._rewrite_files(mounts)
            self._launch(name, ip, [self._map_paths(a, mounts) for a in svc["command"]], {}, hosts, node_dir)
        return self


class RawNats:
    """A minimal NATS client on a socket: enough for a cross-node pub/sub and a JetStream
    API request, without an event loop."""

    def __init__(self, ip: str, port: int, token: str | None = None, tls: ssl.SSLContext | None = None):
        self.sock = socket.create_connection((ip, port), timeout=5)
        self.buf = b""
        self.info = json.loads(self._line()[5:])  # INFO {...}
        if tls is not None:  # NATS upgrades after the plain INFO; the test certs name localhost
            self.sock = tls.wrap_socket(self.sock, server_hostname="localhost")
        connect = {"verbose": False, "pedantic": False, "protocol": 1, "headers": True}
        if token:
            connect["auth_token"] = token
        self.sock.sendall(f"CONNECT {json.dumps(connect)}\r\nPING\r\n".encode())
        line = self._line()
        if line != b"PONG":
            raise AssertionError(f"CONNECT refused: {line!r}")

    def _line(self) -> bytes:
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _read(self, n: int) -> bytes:
        while len(self.buf) < n + 2:
            self.buf += self.sock.recv(65536)
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    def send(self, text: str) -> None:
        self.sock.sendall(text.encode())

    def flush(self) -> None:
        self.send("PING\r\n")
        while self._line() != b"PONG":
            pass

    def next_msg(self, timeout: float) -> tuple[str, bytes] | None:
        self.sock.settimeout(timeout)
        try:
            while True:
                line = self._line()
                if line.startswith(b"MSG ") or line.startswith(b"HMSG "):
                    parts = line.split()
                    data = self._read(int(parts[-1]))
                    if line.startswith(b"HMSG "):
                        data = data[int(parts[-2]):]
                    return parts[1].decode(), data
                if line == b"PING":
                    self.send("PONG\r\n")
        except socket.timeout:
            return None
        finally:
            self.sock.settimeout(5)

    def request(self, subject: str, body: bytes = b"", timeout: float = 5) -> bytes | None:
        inbox = f"_INBOX.deploytest.{random.Random(subject).randrange(1 << 30)}"
        self.send(f"SUB {inbox} 99\r\nPUB {subject} {inbox} {len(body)}\r\n")
        self.sock.sendall(body + b"\r\n")
        got = self.next_msg(timeout)
        self.send("UNSUB 99\r\n")
        return got[1] if got else None

    def close(self) -> None:
        self.sock.close()
