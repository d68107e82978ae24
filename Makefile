# clusterd — the two commands: `make run` and `make test`. Both install what is missing.
SWIFT     ?= swift
VENV      ?= .venv
PY        := $(VENV)/bin/python
APT_PKGS  := liblz4-dev pkg-config
BENCH_PKGS := libnats-dev
NATS_SERVER_BIN = $(shell $(PY) -c 'import shutil,os,sys; p=shutil.which("nats-server", path=os.path.dirname(sys.executable)); print(p or "")' 2>/dev/null)

.PHONY: all run test build release deps system-deps bench-deps venv swift-test compat-test compat-cluster-test chaos chaos-test bench raft-sim fuzz clean deploy-tools deploy-check

all: build

## make run: build (release) and start a local cluster on loopback; Ctrl-C stops it.
run: system-deps release
	@scripts/run-cluster.sh

## make test: install what is missing, build, run every test suite.
test: deps build swift-test compat-test compat-cluster-test deploy-check chaos-test
	@echo "make test: all suites passed"

deps: system-deps venv

# Installs the Debian packages that are not there yet (apt-get update first, as root or via sudo).
system-deps:
	@scripts/ensure-apt.sh $(APT_PKGS)

bench-deps:
	@scripts/ensure-apt.sh $(APT_PKGS) $(BENCH_PKGS)

venv: $(VENV)/.installed
$(VENV)/.installed: Tests/compat/requirements.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q -r Tests/compat/requirements.txt
	touch $@

build:
	$(SWIFT) build

release:
	$(SWIFT) build -c release --product clusterd

swift-test: build
	NATS_SERVER_BIN="$(NATS_SERVER_BIN)" CLUSTERD_BIN="$(CURDIR)/.build/debug/clusterd" SWIFT="$(SWIFT)" scripts/swift-test.sh

# The compatibility suite runs against the real nats-server (proving each test encodes NATS
# behaviour) and, at the same time, against clusterd (scripts/compat.sh). COMPAT_CLUSTERD_MARKERS
# can narrow what runs against clusterd (a pytest -m expression; empty = everything).
COMPAT_CLUSTERD_MARKERS ?=
compat-test: venv build
	PY=$(PY) scripts/compat.sh "" "$(COMPAT_CLUSTERD_MARKERS)"

# Cluster mode: the JetStream tests again, each server as a three-node cluster whose client
# connections rotate over the nodes (docs/compat.md). test_cluster_jetstream.py already ran above.
COMPAT_CLUSTER_MARKERS ?= jetstream and not cluster
compat-cluster-test: venv build
	PY=$(PY) scripts/compat.sh "$(COMPAT_CLUSTER_MARKERS)" "$(COMPAT_CLUSTER_MARKERS)" --cluster

# Offline checks of the deploy files (Dockerfile, docker-compose.yml, deploy/kubernetes, the
# Helm chart) with docker-compose, kubernetes-validate and helm (installed on first use), then
# the StatefulSet and the chart run as three local clusterd processes. See docs/deploy.md.
deploy-tools: venv
	@scripts/ensure-deploy-tools.sh $(VENV)

deploy-check: deploy-tools build
	$(PY) scripts/deploy_check.py
	$(PY) -m pytest Tests/deploy -q --clusterd-bin .build/debug/clusterd

# Chaos (docs/chaos.md): the checker and fault-proxy self-tests, then the short profile (three
# clusterd nodes, a minute of seeded faults under load, every replica read back and checked).
chaos-test: venv build
	CLUSTERD_BIN="$(CURDIR)/.build/debug/clusterd" $(PY) -m pytest Tests/chaos -q

# The long soak: CHAOS_SECONDS (default 1800) each for 3 and 5 clusterd nodes and a three-node
# nats-server cluster; reports in chaos-results/.
chaos: venv build
	CLUSTERD_BIN="$(CURDIR)/.build/debug/clusterd" NATS_SERVER_BIN="$(NATS_SERVER_BIN)" PY=$(PY) scripts/chaos.sh

raft-sim:
	@scripts/raft-sim.sh

## make fuzz: libFuzzer on the client protocol, config and JetStream JSON parsers, FUZZ_SECONDS
## each (default 60). Not part of `make test`; see scripts/fuzz.sh.
fuzz: system-deps
	@scripts/fuzz.sh

# Side-by-side with nats-server (core pub/sub, JetStream), then the storage and consensus
# micro-benchmarks. Results land in bench-results/.
bench: bench-deps venv
	@scripts/bench.sh
	$(SWIFT) build -c release --product StreamLogBench
	.build/release/StreamLogBench | tee bench-results/streamlog.txt
	$(SWIFT) build -c release --product RaftBench
	.build/release/RaftBench | tee bench-results/raft.txt
	$(SWIFT) build -c release --product RaftStorageBench
	.build/release/RaftStorageBench | tee bench-results/raftstorage.txt

clean:
	rm -rf .build data bench-results chaos-results
