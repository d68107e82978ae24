import sys, time, json, shutil, urllib.request
sys.path.insert(0, "Tests/compat")
from clusterproc import Cluster
c = Cluster(sys.argv[1], size=5, name="w5")
def jsz(n):
    return json.loads(urllib.request.urlopen(n.monitor_url + "/jsz", timeout=2).read())
def state():
    out = {}
    for i, n in enumerate(c.nodes):
        try:
            m = jsz(n)["meta_cluster"]
            out[f"n{i+1}"] = (m.get("leader"), m.get("peer"), [(x["name"], x["peer"][:6], x["voter"], x["online"]) for x in m.get("members", [])] if m.get("leader") == f"n{i+1}" else None)
        except Exception as e:
            out[f"n{i+1}"] = repr(e)[:40]
    return out
def wipe(n):
    n.stop(); store = n.extra_args[n.extra_args.index("-sd") + 1]; shutil.rmtree(store); n.start()
try:
    c.start()
    print("start", state())
    c.nodes[1].stop()
    print("n2 stopped")
    t0 = time.monotonic()
    wipe(c.nodes[0])
    for k in range(40):
        time.sleep(2)
        s = state(); print(round(time.monotonic()-t0), s)
    wipe(c.nodes[4])
    t0 = time.monotonic()
    for k in range(30):
        time.sleep(2)
        s = state(); print("after n5 wipe", round(time.monotonic()-t0), s)
finally:
    for i, n in enumerate(c.nodes):
        lines = [ln for ln in n.stderr_text().splitlines() if "JetStream cluster" in ln or "meta" in ln.lower()]
        print(f"---- n{i+1}\n" + "\n".join(lines[-25:]))
    c.close()
