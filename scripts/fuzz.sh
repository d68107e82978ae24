#!/usr/bin/env bash
# make fuzz: builds the libFuzzer targets (the separate package in Fuzz/, so the main build
# never needs the fuzzer runtime) and runs each for FUZZ_SECONDS (default 60).
#
#   FUZZ_SECONDS=300 make fuzz                 longer runs
#   FUZZ_TARGETS=FuzzServerConfig make fuzz    one target
#   FUZZ_SEED=1234 make fuzz                   replayable mutation order (0 = random)
#
# Seeds come from Tests/fuzz/corpus/<target>/ (committed, read-only here); what a run
# discovers goes to Fuzz/.build/corpus/<target>/. A crash stops the run with the input saved
# as Fuzz/crashes/<target>-crash-<sha1>: turn it into a regression test, then fix it.
set -euo pipefail
cd "$(dirname "$0")/.."

SWIFT=${SWIFT:-swift}
FUZZ_SECONDS=${FUZZ_SECONDS:-60}
FUZZ_SEED=${FUZZ_SEED:-0}
FUZZ_TARGETS=${FUZZ_TARGETS:-"FuzzClientProtocol FuzzServerConfig FuzzJetStreamJSON"}

"$SWIFT" build --package-path Fuzz --sanitize=fuzzer
bin=$("$SWIFT" build --package-path Fuzz --sanitize=fuzzer --show-bin-path)

mkdir -p Fuzz/crashes
for target in $FUZZ_TARGETS; do
    seeds="Tests/fuzz/corpus/$target"
    work="Fuzz/.build/corpus/$target"
    mkdir -p "$work"
    dict=()
    [[ -f "Fuzz/dicts/$target.dict" ]] && dict=("-dict=Fuzz/dicts/$target.dict")
    echo "== $target: ${FUZZ_SECONDS}s (seeds: $(ls "$seeds" | wc -l))"
    log="Fuzz/.build/$target.log"
    set +e
    "$bin/$target" "$work" "$seeds" "${dict[@]}" \
        -max_total_time="$FUZZ_SECONDS" -seed="$FUZZ_SEED" -max_len=8192 -timeout=10 -rss_limit_mb=2048 \
        -artifact_prefix="Fuzz/crashes/$target-" -print_final_stats=1 >"$log" 2>&1
    status=$?
    set -e
    # libFuzzer's progress lines are in the log; show the summary (and any crash report).
    grep -E '^(#[0-9]+[[:space:]]+(INITED|DONE)|stat::(number_of_executed_units|peak_rss_mb|new_units_added)|==[0-9]+==|SUMMARY|Fatal error|.*Test unit written)' "$log" || true
    if [[ $status -ne 0 ]]; then
        tail -40 "$log" >&2
        echo "$target: libFuzzer exited with $status; the input is in Fuzz/crashes/ (full log: $log)" >&2
        exit "$status"
    fi
done
echo "make fuzz: no crashes"
