#!/usr/bin/env bash
# scripts/compat.sh — the compatibility suite against nats-server and against clusterd, side by
# side. `make compat-test` and `make compat-cluster-test` call it.
#
# usage: compat.sh NATS_MARKERS CLUSTERD_MARKERS [pytest arguments for both runs...]
#   (a pytest -m expression each; empty = every test)
#
# The nats-server run is mostly waiting (measured: 24 s of CPU in its 150 s), so it runs in the
# background while the clusterd run runs in front, instead of before it; its output is printed
# when both are done. Each run takes its own half of the listen ports (COMPAT_PORT_SHARE), so
# the two never pick the same port (where the system has ports below its ephemeral range, as
# Linux does by default; otherwise the kernel picks ports for both, as for a single run).
# Neither run is stopped when the other fails: each stops the servers it started; the exit
# status is non-zero when either run failed.
set -uo pipefail
cd "$(dirname "$0")/.."

[[ $# -ge 2 ]] || { echo "usage: compat.sh NATS_MARKERS CLUSTERD_MARKERS [pytest args...]" >&2; exit 2; }
nats_markers=$1 clusterd_markers=$2
shift 2
PY=${PY:-.venv/bin/python}
CLUSTERD_BIN=${CLUSTERD_BIN:-.build/debug/clusterd}
mkdir -p .build
nats_log=$(mktemp .build/compat-nats-server.XXXXXX)

# A script's background commands start with SIGINT ignored, and Python keeps an ignored SIGINT:
# reset it, so the Ctrl-C (or TERM) passed on below stops the run and its servers.
(trap - INT; exec env COMPAT_PORT_SHARE=0/2 "$PY" -m pytest Tests/compat -q "$@" --server nats-server \
  -m "$nats_markers") >"$nats_log" 2>&1 &
nats_pid=$!
trap 'kill -INT "$nats_pid" 2>/dev/null' INT TERM

COMPAT_PORT_SHARE=1/2 "$PY" -m pytest Tests/compat -q "$@" --server clusterd --clusterd-bin "$CLUSTERD_BIN" \
  -m "$clusterd_markers"
clusterd_rc=$?

nats_rc=0
wait "$nats_pid" || nats_rc=$?
# A trapped signal ends `wait` early (the run goes on): wait until it has really ended.
while kill -0 "$nats_pid" 2>/dev/null; do wait "$nats_pid"; nats_rc=$?; done
echo "--- the same tests against nats-server (run alongside, exit $nats_rc) ---"
cat "$nats_log"
rm -f "$nats_log"
if [[ $nats_rc -ne 0 || $clusterd_rc -ne 0 ]]; then
  echo "compat: nats-server run exit $nats_rc, clusterd run exit $clusterd_rc" >&2
  exit 1
fi
