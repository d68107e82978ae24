#!/usr/bin/env bash
# `make run`: start clusterd nodes on loopback with data under ./data, print the URLs, and stop
# them gracefully (SIGTERM) on Ctrl-C. NODES defaults to 1 until clustering lands.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.build/release/clusterd
NODES=${NODES:-1}
pids=()
stop() {
  echo
  echo "stopping ${#pids[@]} node(s)..."
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  exit 0
}
trap stop INT TERM
for i in $(seq 1 "$NODES"); do
  mkdir -p "data/n$i"
  port=$((4221 + i)); http=$((8221 + i))
  "$BIN" -a 127.0.0.1 -p "$port" -m "$http" --http_host 127.0.0.1 -n "n$i" -l "data/n$i/clusterd.log" &
  pids+=($!)
done
sleep 1
for i in $(seq 1 "$NODES"); do
  port=$((4221 + i)); http=$((8221 + i))
  echo "n$i: nats://127.0.0.1:$port   monitoring http://127.0.0.1:$http/varz   log data/n$i/clusterd.log"
done
echo "Ctrl-C stops the cluster."
wait
