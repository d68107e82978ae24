#!/bin/sh
# make chaos: the long soak. clusterd with 3 and 5 nodes, then a three-node nats-server cluster
# (kill / pause / partition kinds) under the same harness; JSON reports and a Markdown table
# land in chaos-results/. CHAOS_SECONDS (default 1800) per run, CHAOS_SEED to replay.
set -u
SECONDS_PER_RUN="${CHAOS_SECONDS:-1800}"
SEED="${CHAOS_SEED:-$(date +%s)}"
PY="${PY:-.venv/bin/python}"
OUT=chaos-results
mkdir -p "$OUT"
status=0
run() {
  name=$1; shift
  echo "== chaos $name ($SECONDS_PER_RUN s, seed $SEED)"
  "$PY" Tests/chaos/run_chaos.py --seconds "$SECONDS_PER_RUN" --seed "$SEED" --report "$OUT/$name.json" \
    --history "$OUT/$name.history.jsonl" "$@" \
    | tee "$OUT/$name.log" || status=1
}
run clusterd-3 --server clusterd --nodes 3
run clusterd-5 --server clusterd --nodes 5
run nats-server-3 --server nats-server --nodes 3
"$PY" Tests/chaos/report.py "$OUT"/clusterd-3.json "$OUT"/clusterd-5.json "$OUT"/nats-server-3.json > "$OUT/report.md"
cat "$OUT/report.md"
exit $status
