#!/usr/bin/env bash
# Runs `swift test` with its whole output kept in .build/swift-test.log. On failure it ends
# with a summary: a crash (a trap, a signal) ends the output with a backtrace and register dump
# that push the failing test's name out of a CI log's tail, which is all CI shows of a run.
set -uo pipefail
cd "$(dirname "$0")/.."
log=.build/swift-test.log
mkdir -p .build
"${SWIFT:-swift}" test "$@" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
[ "$rc" -eq 0 ] && exit 0
echo
echo "=== swift test failed (exit $rc); the whole output: $log ==="
# Last in the output, as a CI log's tail shows only the end: the crashed thread's first frames
# (without the runtime's own), the failure lines, then the tests that started and never
# finished (the one running when the process crashed).
awk '/ crashed:$/ { on = 1; n = 0; print; next }
     on && /^ *[0-9]+ / { if ($0 !~ /libswiftCore|libswiftSwiftOnoneSupport/) { print; n++ } }
     on && (n >= 8 || /^Registers:/) { exit }' "$log"
grep -E "error: |Fatal error|Program crashed" "$log" | tail -10
awk "/^Test Case '.*' started/ { split(\$0, p, \"'\"); open[p[2]] = 1 }
     /^Test Case '.*' (passed|failed|skipped)/ { split(\$0, p, \"'\"); delete open[p[2]] }
     END { for (t in open) print \"unfinished: \" t }" "$log"
exit "$rc"
