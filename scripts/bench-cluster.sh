# scripts/bench-cluster.sh — the "cluster" section of scripts/bench.sh (sourced, not run).
#
# Three-node clusters on loopback, R3 file streams, 128 B messages, the neutral C client
# natsbench: async publish with 256 acks in flight through a NON-leader node and through the
# stream leader (and through the leader with 1024 in flight, where the fsync round trip limits a
# client less), sync publish p50/p99 through the leader, pull consume through the consumer
# leader. Three clusters run side by side for the whole section: clusterd, nats-server with
# its defaults, and nats-server with `jetstream { sync_interval: always }`; and a fourth,
# clusterd with the opt-in `jetstream { sync_interval: "2m" }` (acks on a quorum's write, as
# nats-server's default does: the like-for-like row against nats-server default). For every
# workload, each run measures all of them, the order rotating per run, so noise on the shared
# machine falls on all of them; the table shows medians (and min–max) and the ratios.
#
# The leader is the one STREAM.INFO reports in cluster.leader (both servers fill it);
# natsbench picks the data connection from --leader-map, and this script checks from each
# RESULT line that the connection really went to (or away from) the leader.
#
# Environment (besides bench.sh's): BENCH_CLUSTER_MSGS (async publish / consume messages per
# run, default 100000), BENCH_CLUSTER_SYNC_MSGS (sync publishes per run, default 2000),
# BENCH_CLUSTER_WORKLOADS (default "pub-follower pub-leader pub-leader-1024 sync consume").

BENCH_CLUSTER_MSGS=${BENCH_CLUSTER_MSGS:-100000}
BENCH_CLUSTER_SYNC_MSGS=${BENCH_CLUSTER_SYNC_MSGS:-2000}
BENCH_CLUSTER_WORKLOADS=${BENCH_CLUSTER_WORKLOADS:-"pub-follower pub-leader pub-leader-1024 sync consume"}
CLUSTER_KINDS=(clusterd nats-default nats-always clusterd-interval)
# Table rows: "label|key" (the key the runs' values are kept under).
CL_ROWS=(
  "async publish via a non-leader, 256 in flight (msgs/s)|pubf"
  "async publish via the leader, 256 in flight (msgs/s)|publ"
  "async publish via the leader, 1024 in flight (msgs/s)|publ1k"
  "sync publish via the leader, p50 (µs)|p50"
  "sync publish via the leader, p99 (µs)|p99"
  "pull consume via the consumer leader, batch 100, explicit acks (msgs/s)|cons"
)
declare -A CL_URLS=() CL_MAP=() CL_PIDS=() CL_VALUES=()

# start_cluster KIND BINARY [ARGS...]: three nodes n1..n3 named for the leader map, each with
# its own store under TMP_DIR, full route mesh. Sets CL_URLS, CL_MAP and CL_PIDS for KIND.
start_cluster() {
  local kind=$1 bin=$2 i routes="" urls="" map="" pids=""
  shift 2
  local cports=("$(free_port)" "$(free_port)" "$(free_port)")
  for i in 0 1 2; do routes+="${routes:+,}nats://127.0.0.1:${cports[$i]}"; done
  for i in 0 1 2; do
    start_server "$kind-n$((i + 1))" "$bin" -n "n$((i + 1))" -js -sd "$TMP_DIR/$kind/n$((i + 1))" \
      --cluster_name "bench-$kind" --cluster "nats://127.0.0.1:${cports[$i]}" --routes "$routes" "$@"
    urls+="${urls:+,}$SERVER_URL"; map+="${map:+,}n$((i + 1))=$SERVER_URL"; pids+="${pids:+ }$SERVER_PID"
  done
  CL_URLS[$kind]=$urls; CL_MAP[$kind]=$map; CL_PIDS[$kind]=$pids
}

# cpu_ticks PIDS...: user+system clock ticks used so far by these processes.
cpu_ticks() {
  local pid total=0 stat
  for pid in "$@"; do
    stat=$(cat "/proc/$pid/stat" 2>/dev/null) || continue
    stat=${stat##*) }   # fields after "(comm) "; utime and stime are fields 12 and 13 from here
    # shellcheck disable=SC2086
    set -- $stat
    total=$((total + ${12} + ${13}))
  done
  echo "$total"
}

# note_idle_cpu: the CPU an idle cluster takes from the one being measured (all three stay up).
note_idle_cpu() {
  local kind before=() after i=0 hz
  hz=$(getconf CLK_TCK)
  # shellcheck disable=SC2086
  for kind in "${CLUSTER_KINDS[@]}"; do before+=("$(cpu_ticks ${CL_PIDS[$kind]})"); done
  sleep 5
  local line=""
  for kind in "${CLUSTER_KINDS[@]}"; do
    # shellcheck disable=SC2086
    after=$(cpu_ticks ${CL_PIDS[$kind]})
    line+="${line:+, }$kind $(awk -v t=$((after - before[i])) -v hz="$hz" 'BEGIN { printf "%.1f", 100 * t / hz / 5 }')%"
    i=$((i + 1))
  done
  NOTES+=("idle CPU of each three-node cluster after its warm-up (all three stay up during the section; % of one core): $line")
  log "idle CPU: $line"
}

# url_of KIND NODE: the client URL of node nX in KIND's leader map.
url_of() { tr ',' '\n' <<<"${CL_MAP[$1]}" | sed -n "s/^$2=//p"; }

# leader_first KIND NODE: KIND's URLs with node NODE's first (natsbench falls back to the first).
leader_first() {
  local first
  first=$(url_of "$1" "$2")
  tr ',' '\n' <<<"${CL_URLS[$1]}" | awk -v f="$first" 'BEGIN { out = f } $0 != f { out = out "," $0 } END { print out }'
}

# cluster_run KIND WORKLOAD: one natsbench run; sets RUN_RESULT to its RESULT line, or empty
# when it failed or connected to the wrong node (a note says which).
cluster_run() {
  local kind=$1 workload=$2 urls=${CL_URLS[$1]} out want leader url pubout sleader
  local common=(--leader-map "${CL_MAP[$1]}" --replicas 3 --storage file -s 128 --timeout 300)
  local n=$BENCH_CLUSTER_MSGS window=256
  [[ $workload == pub-leader-1024 ]] && window=1024
  RUN_RESULT=""
  case $workload in
    pub-follower) out=$("$NATSBENCH" jspub --url "$urls" "${common[@]}" --avoid-leader --stream CBPUB --fresh -n "$n" -w "$window" 2>"$TMP_DIR/run.err") ;;
    pub-leader|pub-leader-1024)
      out=$("$NATSBENCH" jspub --url "$urls" "${common[@]}" --stream CBPUB --fresh -n "$n" -w "$window" 2>"$TMP_DIR/run.err") ;;
    sync)         out=$("$NATSBENCH" jspub --url "$urls" "${common[@]}" --sync --stream CBSYNC --fresh -n "$BENCH_CLUSTER_SYNC_MSGS" 2>"$TMP_DIR/run.err") ;;
    consume)
      # Filled untimed through the leader; then consumed through the consumer's leader. A server
      # whose consumer info has no cluster block gets the stream leader first in --url: clusterd
      # runs every consumer on its stream's leader.
      pubout=$("$NATSBENCH" jspub --url "$urls" "${common[@]}" --stream CBCON --fresh -n "$n" -w "$window" 2>"$TMP_DIR/run.err") &&
        sleader=$(result_field "$(grep '^RESULT' <<<"$pubout" | tail -1)" leader) &&
        out=$("$NATSBENCH" jsconsume --url "$(leader_first "$kind" "$sleader")" "${common[@]}" --stream CBCON \
          --durable "cb$RANDOM" -n "$n" -b 100 2>"$TMP_DIR/run.err") ;;
    *) die "unknown cluster workload $workload" ;;
  esac || { NOTES+=("$kind $workload: a run failed ($(tail -1 "$TMP_DIR/run.err"))"); return; }
  out=$(grep '^RESULT' <<<"$out" | tail -1 || true)
  leader=$(result_field "$out" leader)
  if [[ $workload == consume ]]; then
    leader=$(result_field "$out" consumer_leader)
    if [[ $leader == none ]]; then
      leader=$(result_field "$out" stream_leader)
      CL_CONSUMER_NOTE="$kind: consumer info has no cluster block; consumed through the stream leader"
    fi
  fi
  url=$(result_field "$out" url)
  want=$(url_of "$kind" "$leader")
  if [[ -z $want || ( $workload == pub-follower && $url == "$want" ) || ( $workload != pub-follower && $url != "$want" ) ]]; then
    NOTES+=("$kind $workload: run discarded, connected to $url while the leader was '$leader'")
    return
  fi
  RUN_RESULT=$out
}

# keep KIND KEY VALUE: appends one run's value to the list for (KEY, KIND).
keep() { CL_VALUES["$2|$1"]+="${CL_VALUES["$2|$1"]:+ }${3:-FAIL}"; }

# cluster_measure WORKLOAD KEY=FIELD...: BENCH_RUNS rounds; in round r the kinds run in an order
# rotated by r, so none is always first (fresh caches) or last (warm disk, busy neighbours).
cluster_measure() {
  local workload=$1 run k idx kind spec
  shift
  for run in $(seq 1 "$BENCH_RUNS"); do
    for k in "${!CLUSTER_KINDS[@]}"; do
      idx=$(((k + run - 1) % ${#CLUSTER_KINDS[@]})); kind=${CLUSTER_KINDS[$idx]}
      cluster_run "$kind" "$workload"
      for spec in "$@"; do keep "$kind" "${spec%%=*}" "$(result_field "$RUN_RESULT" "${spec#*=}")"; done
      log "cluster $workload run $run $kind: $(for spec in "$@"; do printf '%s=%s ' "${spec%%=*}" "$(result_field "$RUN_RESULT" "${spec#*=}")"; done)"
    done
  done
}

# cell KEY KIND -> "median (min–max)" over the successful runs, or FAIL.
numbers() { tr ' ' '\n' <<<"${CL_VALUES["$1|$2"]:-}" | { grep -E '^[0-9.]+$' || true; }; }
cell_median() { numbers "$1" "$2" | median; }
cell_range() {
  numbers "$1" "$2" | sort -n |
    awk 'NR == 1 { lo = $1 } { hi = $1 } END { if (NR > 1) printf "%.0f–%.0f", lo, hi }'
}
ratio() { [[ $1 =~ ^[0-9.]+$ && $2 =~ ^[0-9.]+$ ]] && awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }' || echo n/a; }
fmt_cell() {
  local m r
  m=$(cell_median "$1" "$2"); r=$(cell_range "$1" "$2")
  if [[ -z $m ]]; then echo FAIL; return; fi
  echo "$(thousands "$(printf '%.0f' "$m")")${r:+ ($(thousands "${r%%–*}")–$(thousands "${r#*–}"))}"
}

write_cluster_table() {
  local file=$1 label key c nd na row
  mkdir -p "$(dirname "$file")"
  {
    echo "# JetStream cluster (R3, file storage, 128 B): clusterd vs nats-server, three nodes each on loopback"
    echo
    echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, load average at start $CL_LOAD_START, at end $(cut -d' ' -f1-3 /proc/loadavg)."
    echo "$BENCH_RUNS runs per cluster and workload, kinds rotating per run; cells: median (min–max)."
    echo "$BENCH_CLUSTER_MSGS msgs per async publish / consume run, $BENCH_CLUSTER_SYNC_MSGS per sync publish run."
    echo "clusterd: \`$("$CLUSTERD_BIN" --version 2>/dev/null | head -1 || echo unknown)\`;" \
         "nats-server: \`$("$NATS_SERVER_BIN" --version 2>/dev/null | head -1 || echo unknown)\`;" \
         "client: natsbench (cnats $(pkg-config --modversion libnats 2>/dev/null || echo '?'))."
    echo "Durability: clusterd acks after the entry is fsync'd on a quorum; nats-server default acks before"
    echo "any fsync (sync_interval 2 min); nats-server sync_interval: always is the like-for-like durable comparison."
    echo "Ratios are clusterd / nats-server (for latency rows, above 1 means clusterd is slower)."
    echo
    echo "| workload | clusterd | nats-server default | ratio | nats-server sync always | ratio |"
    echo "| --- | ---: | ---: | ---: | ---: | ---: |"
    for row in "${CL_ROWS[@]}"; do
      label=${row%|*}; key=${row#*|}
      [[ -n "${CL_VALUES["$key|clusterd"]:-}${CL_VALUES["$key|nats-default"]:-}${CL_VALUES["$key|nats-always"]:-}" ]] || continue
      c=$(cell_median "$key" clusterd); nd=$(cell_median "$key" nats-default); na=$(cell_median "$key" nats-always)
      echo "| $label | $(fmt_cell "$key" clusterd) | $(fmt_cell "$key" nats-default) | $(ratio "$c" "$nd") | $(fmt_cell "$key" nats-always) | $(ratio "$c" "$na") |"
    done
    echo
    echo "Opt-in \`jetstream { sync_interval: \"2m\" }\` (clusterd acks once a quorum wrote the entry, fsyncs every"
    echo "2 minutes: nats-server's default trade-off), against nats-server default:"
    echo
    echo "| workload | clusterd sync_interval 2m | nats-server default | ratio |"
    echo "| --- | ---: | ---: | ---: |"
    for row in "${CL_ROWS[@]}"; do
      label=${row%|*}; key=${row#*|}
      [[ -n "${CL_VALUES["$key|clusterd-interval"]:-}" ]] || continue
      c=$(cell_median "$key" clusterd-interval); nd=$(cell_median "$key" nats-default)
      echo "| $label | $(fmt_cell "$key" clusterd-interval) | $(fmt_cell "$key" nats-default) | $(ratio "$c" "$nd") |"
    done
    if ((${#NOTES[@]})); then
      echo
      for row in "${NOTES[@]}"; do echo "- note: $row"; done
    fi
  } | tee "$file"
  log "wrote $file"
}

section_cluster() {
  ROWS=(); NOTES=(); CL_VALUES=(); CL_CONSUMER_NOTE=""
  CL_LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
  local conf="$TMP_DIR/ns-always.conf" kind pid
  printf 'jetstream { sync_interval: always }\n' >"$conf"
  printf 'jetstream { sync_interval: "2m" }\n' >"$TMP_DIR/cd-interval.conf"
  start_cluster clusterd "$CLUSTERD_BIN"
  start_cluster clusterd-interval "$CLUSTERD_BIN" -c "$TMP_DIR/cd-interval.conf"
  start_cluster nats-default "$NATS_SERVER_BIN"
  start_cluster nats-always "$NATS_SERVER_BIN" -c "$conf"
  # Warm-up (untimed): waits out the meta leader elections and touches every code path once.
  for kind in "${CLUSTER_KINDS[@]}"; do
    "$NATSBENCH" jspub --url "${CL_URLS[$kind]}" --replicas 3 --stream CBWARM --fresh -n 2000 -s 128 -w 256 --timeout 120 >/dev/null ||
      die "warm-up publish on the $kind cluster failed"
  done
  note_idle_cpu
  local workload
  for workload in $BENCH_CLUSTER_WORKLOADS; do
    case $workload in
      pub-follower) cluster_measure pub-follower pubf=msgs_per_s ;;
      pub-leader)   cluster_measure pub-leader publ=msgs_per_s ;;
      pub-leader-1024) cluster_measure pub-leader-1024 publ1k=msgs_per_s ;;
      sync)         cluster_measure sync p50=p50_us p99=p99_us ;;
      consume)      cluster_measure consume cons=msgs_per_s ;;
      *) die "unknown cluster workload '$workload'" ;;
    esac
  done
  for kind in "${CLUSTER_KINDS[@]}"; do
    # shellcheck disable=SC2086
    for pid in ${CL_PIDS[$kind]}; do stop_server "$pid"; done
  done
  if [[ -n $CL_CONSUMER_NOTE ]]; then NOTES+=("$CL_CONSUMER_NOTE"); fi
  write_cluster_table "$RESULTS_DIR/cluster.txt"
}
