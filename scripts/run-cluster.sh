#!/usr/bin/env bash
# `make run`: start a three-node clusterd cluster on loopback (client ports 4222-4224, route
# ports 6222-6224, monitoring 8222-8224, data and logs under ./data/n1..n3), print the URLs,
# and stop the nodes gracefully (SIGTERM) on Ctrl-C. NODES=1 starts a single node instead.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.build/release/clusterd}
NODES=${NODES:-3}
CLUSTER_NAME=${CLUSTER_NAME:-clusterd}
pids=()
stop() {
  echo
  echo "stopping ${#pids[@]} node(s)..."
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  exit 0
}
trap stop INT TERM
# Every node gets the same seed list (itself included, as in a StatefulSet); routes to self
# are detected and dropped, crossed dials collapse to one route per pair.
routes=""
for i in $(seq 1 "$NODES"); do routes="${routes:+$routes,}nats://127.0.0.1:$((6221 + i))"; done
for i in $(seq 1 "$NODES"); do
  mkdir -p "data/n$i"
  port=$((4221 + i)); http=$((8221 + i)); cport=$((6221 + i))
  cluster_args=()
  if [ "$NODES" -gt 1 ]; then
    cluster_args=(--cluster "nats://127.0.0.1:$cport" --cluster_name "$CLUSTER_NAME" --routes "$routes")
  fi
  "$BIN" -a 127.0.0.1 -p "$port" -m "$http" --http_host 127.0.0.1 -n "n$i" -js -sd "data/n$i" \
    -l "data/n$i/clusterd.log" "${cluster_args[@]}" &
  pids+=($!)
done
# Wait (bounded) until every node reports a route to every other node.
want=$((NODES - 1))
for _ in $(seq 1 50); do
  ready=0
  for i in $(seq 1 "$NODES"); do
    n=$(curl -fsS "http://127.0.0.1:$((8221 + i))/varz" 2>/dev/null | sed -n 's/.*"routes" *: *\([0-9]*\).*/\1/p' | head -1 || true)
    [ "${n:-0}" -ge "$want" ] && ready=$((ready + 1))
  done
  [ "$ready" -eq "$NODES" ] && break
  sleep 0.2
done
for i in $(seq 1 "$NODES"); do
  port=$((4221 + i)); http=$((8221 + i))
  echo "n$i: nats://127.0.0.1:$port   monitoring http://127.0.0.1:$http/routez   log data/n$i/clusterd.log"
done
[ "$NODES" -gt 1 ] && echo "cluster \"$CLUSTER_NAME\": $ready/$NODES node(s) fully meshed"
echo "Ctrl-C stops the cluster."
wait
