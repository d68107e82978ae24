#!/usr/bin/env python3
"""Offline validation of the deploy files (`make deploy-check`); no container engine or
Kubernetes cluster needed.

- Dockerfile: parsed with buildkit's own parser (the `dockerfile` package); checked for a
  build stage on the official Swift image, a non-root USER, /data volume, the three ports,
  a /healthz HEALTHCHECK, and COPY sources that exist and are not excluded by .dockerignore.
- docker-compose.yml: `docker-compose config` must accept it without a warning; the
  normalised file is checked (three nodes, named volume each, health checks, restart policy,
  first node's ports published, route seeds = service names).
- deploy/kubernetes/*.yaml and the Helm chart rendered with its default values and every
  deploy/helm/clusterd/ci/*.yaml: `kubernetes-validate --strict` against the Kubernetes
  schemas of the oldest and newest supported version (a WARN counts as a failure), and
  `helm lint --strict`.

Exit status 0 when everything passed; every problem is printed.
"""
import fnmatch
import os
import re
import subprocess
import sys
import tempfile

import dockerfile
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENV_BIN = os.path.dirname(sys.executable)
HELM = os.path.join(VENV_BIN, "helm")
KUBE_VALIDATE = os.path.join(VENV_BIN, "kubernetes-validate")
KUBE_VERSIONS = ["1.29.0", "1.37.0"]
CHART = os.path.join(ROOT, "deploy", "helm", "clusterd")

problems = []
checks = 0


def check(ok, message):
    global checks
    checks += 1
    if not ok:
        problems.append(message)
    return ok


def run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, **kw)


# -- Dockerfile ---------------------------------------------------------------------------

def dockerignore_patterns():
    path = os.path.join(ROOT, ".dockerignore")
    with open(path) as f:
        return [l.strip() for l in f if l.strip() and not l.startswith("#")]


def ignored(path, patterns):
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    return any(fnmatch.fnmatch(p, pat.lstrip("/")) for pat in patterns for p in prefixes)


def check_dockerfile():
    cmds = dockerfile.parse_file(os.path.join(ROOT, "Dockerfile"))
    froms = [c.value for c in cmds if c.cmd == "FROM"]
    check(len(froms) >= 2, "Dockerfile: expected a multi-stage build")
    check(any(v[0].startswith("swift:") for v in froms[:-1]), "Dockerfile: build stage must use the official swift image")
    final_stage = max(i for i, c in enumerate(cmds) if c.cmd == "FROM")
    final = cmds[final_stage:]
    users = [c.value[0] for c in final if c.cmd == "USER"]
    check(users and users[-1].split(":")[0] not in ("root", "0"), "Dockerfile: runtime stage must run as a non-root USER")
    check(any("/data" in c.value for c in final if c.cmd == "VOLUME"), "Dockerfile: VOLUME /data missing")
    exposed = {p for c in final if c.cmd == "EXPOSE" for p in c.value}
    check({"4222", "6222", "8222"} <= exposed, f"Dockerfile: EXPOSE 4222 6222 8222 expected, got {sorted(exposed)}")
    health = [c for c in final if c.cmd == "HEALTHCHECK"]
    check(health and any("/healthz" in v for v in health[-1].value), "Dockerfile: HEALTHCHECK on /healthz missing")
    check(any("liblz4" in " ".join(c.value) for c in final if c.cmd == "RUN"), "Dockerfile: runtime stage must install liblz4")
    patterns = dockerignore_patterns()
    for c in cmds:
        if c.cmd not in ("COPY", "ADD") or any(f.startswith("--from") for f in c.flags):
            continue
        for src in c.value[:-1]:
            matches = [p for p in (os.path.relpath(m, ROOT) for m in _glob(src))]
            check(matches, f"Dockerfile: COPY source {src} does not exist")
            for m in matches:
                check(not ignored(m, patterns), f"Dockerfile: COPY source {m} is excluded by .dockerignore")


def _glob(pattern):
    import glob
    return glob.glob(os.path.join(ROOT, pattern))


# -- docker compose -----------------------------------------------------------------------

def conf_routes(text):
    m = re.search(r"routes\s*:?\s*\[(.*?)\]", text, re.S)
    return re.findall(r"nats://([^:\s,]+):(\d+)", m.group(1)) if m else []


def compose_volumes(svc):
    """Volumes as (type, source, target) whatever the compose version printed (v1 writes
    `src:target:mode` strings, v2 the long form)."""
    out = []
    for v in svc.get("volumes", []):
        if isinstance(v, dict):
            out.append((v.get("type"), v.get("source"), v.get("target")))
        else:
            src, target = v.split(":")[:2]
            out.append(("bind" if src.startswith((".", "/")) else "volume", src, target))
    return out


def check_compose():
    r = run(["docker-compose", "-f", "docker-compose.yml", "config", "-q"])
    check(r.returncode == 0 and not r.stderr.strip(),
          f"docker-compose config -q: exit {r.returncode}: {r.stderr.strip()}")
    r = run(["docker-compose", "-f", "docker-compose.yml", "config"])
    if not check(r.returncode == 0, "docker-compose config failed"):
        return
    doc = yaml.safe_load(r.stdout)
    services = doc.get("services", {})
    check(len(services) == 3, f"compose: expected 3 services, got {sorted(services)}")
    named = set(doc.get("volumes", {}))
    data_volumes = set()
    for name, svc in sorted(services.items()):
        vols = [v for v in compose_volumes(svc) if v[2] == "/data"]
        if check(len(vols) == 1 and vols[0][0] == "volume" and vols[0][1] in named,
                 f"compose: {name} needs one named volume on /data"):
            data_volumes.add(vols[0][1])
        test = " ".join(svc.get("healthcheck", {}).get("test", []))
        check("/healthz" in test, f"compose: {name} health check must probe /healthz")
        check(svc.get("restart") in ("always", "unless-stopped", "on-failure"), f"compose: {name} needs a restart policy")
        cmd = svc.get("command") or []
        check("--server_name" in cmd and cmd[cmd.index("--server_name") + 1] == name,
              f"compose: {name} must be started with --server_name {name}")
        conf = [v for v in compose_volumes(svc) if v[2] == "/etc/clusterd/clusterd.conf"]
        if check(len(conf) == 1 and os.path.isfile(conf[0][1]), f"compose: {name} must mount the cluster config"):
            with open(conf[0][1]) as f:
                seeds = {host for host, port in conf_routes(f.read()) if port == "6222"}
            check(seeds == set(services), f"compose: route seeds {sorted(seeds)} must be the service names {sorted(services)}")
    check(len(data_volumes) == 3, "compose: every node needs its own data volume")
    first = services.get(sorted(services)[0], {}) if services else {}
    published = {str(p.get("target")) for p in first.get("ports", []) if isinstance(p, dict)}
    check({"4222", "8222"} <= published, f"compose: first node must publish 4222 and 8222, got {sorted(published)}")


# -- Kubernetes ---------------------------------------------------------------------------

def kube_validate(paths, what):
    for version in KUBE_VERSIONS:
        r = run([KUBE_VALIDATE, "--strict", "-k", version] + paths)
        out = (r.stdout + r.stderr).strip()
        bad = [l for l in out.splitlines() if not l.startswith("INFO")]
        check(r.returncode == 0 and not bad, f"kubernetes-validate {version} {what}:\n  " + "\n  ".join(bad or [out]))


def check_manifest_shape(docs, where):
    by_kind = {}
    for d in docs:
        if d:
            by_kind.setdefault(d["kind"], []).append(d)
    sts = by_kind.get("StatefulSet", [{}])[0]
    spec = sts.get("spec", {})
    check(spec.get("podManagementPolicy") == "Parallel", f"{where}: StatefulSet needs podManagementPolicy Parallel")
    services = {s["metadata"]["name"]: s for s in by_kind.get("Service", [])}
    headless = services.get(spec.get("serviceName"), {})
    check(headless.get("spec", {}).get("clusterIP") == "None", f"{where}: serviceName must be a headless Service")
    check(headless.get("spec", {}).get("publishNotReadyAddresses") is True,
          f"{where}: the headless Service must publish not-ready pods (peers mesh before readiness)")
    pdbs = by_kind.get("PodDisruptionBudget", [])
    check(pdbs and pdbs[0]["spec"].get("maxUnavailable") == 1, f"{where}: PodDisruptionBudget maxUnavailable 1 missing")
    pod = spec.get("template", {}).get("spec", {})
    c = (pod.get("containers") or [{}])[0]
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        path = c.get(probe, {}).get("httpGet", {}).get("path") or ""
        check(path.split("?")[0] == "/healthz", f"{where}: {probe} on /healthz missing")
    check(c.get("lifecycle", {}).get("preStop"), f"{where}: preStop missing")
    check(pod.get("terminationGracePeriodSeconds", 30) >= 30, f"{where}: terminationGracePeriodSeconds too short for a graceful handover")
    check(c.get("resources", {}).get("requests") and c.get("resources", {}).get("limits"), f"{where}: resources missing")
    check(pod.get("affinity", {}).get("podAntiAffinity"), f"{where}: podAntiAffinity missing")
    check(spec.get("volumeClaimTemplates"), f"{where}: volumeClaimTemplates missing")
    cms = by_kind.get("ConfigMap", [])
    if check(cms and "clusterd.conf" in cms[0].get("data", {}), f"{where}: ConfigMap with clusterd.conf missing"):
        seeds = conf_routes(cms[0]["data"]["clusterd.conf"])
        name, svc = sts["metadata"]["name"], spec.get("serviceName")
        # Every pod is a seed: JetStream's meta group bootstraps with the peers a node has once
        # all its seeds answered, which is then the same set on every pod.
        want = {f"{name}-{i}.{svc}" for i in range(spec.get("replicas", 0))}
        check({h for h, _ in seeds} == want, f"{where}: route seeds {seeds} must be every pod's headless DNS name {sorted(want)}")


def check_kubernetes():
    kdir = os.path.join(ROOT, "deploy", "kubernetes")
    files = sorted(os.path.join(kdir, f) for f in os.listdir(kdir) if f.endswith(".yaml"))
    kube_validate(files, "deploy/kubernetes")
    docs = []
    for f in files:
        with open(f) as fh:
            docs += list(yaml.safe_load_all(fh))
    check_manifest_shape(docs, "deploy/kubernetes")


def check_helm():
    value_files = [None] + sorted(os.path.join(CHART, "ci", f) for f in os.listdir(os.path.join(CHART, "ci")))
    for vf in value_files:
        label = os.path.basename(vf) if vf else "default values"
        extra = ["-f", vf] if vf else []
        r = run([HELM, "lint", "--strict", CHART] + extra)
        check(r.returncode == 0, f"helm lint ({label}):\n{r.stdout}{r.stderr}")
        r = run([HELM, "template", "rel", CHART] + extra)
        if not check(r.returncode == 0, f"helm template ({label}): {r.stderr}"):
            continue
        with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as tmp:
            tmp.write(r.stdout)
        try:
            kube_validate([tmp.name], f"helm template ({label})")
        finally:
            os.unlink(tmp.name)
        check_manifest_shape(list(yaml.safe_load_all(r.stdout)), f"helm ({label})")


def main():
    for step in (check_dockerfile, check_compose, check_kubernetes, check_helm):
        try:
            step()
        except Exception as e:  # a crash in one step is a failure, not a skipped step
            problems.append(f"{step.__name__}: {type(e).__name__}: {e}")
    for p in problems:
        print("FAIL", p)
    print(f"deploy-check: {checks - len(problems)} passed, {len(problems)} failed")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
