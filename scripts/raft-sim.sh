#!/usr/bin/env bash
# Runs the deterministic Raft cluster simulator over many seeds.
#
#   scripts/raft-sim.sh [N] [BASE]      # N seeds starting at BASE (defaults: 10000, 1)
#   RAFT_SEEDS=100000 scripts/raft-sim.sh
#   RAFT_SEED=9452 scripts/raft-sim.sh  # replay one seed
#
# Builds the tests once (debug unless CONFIG=release), then runs the simulation test with
# RAFT_SEEDS/RAFT_SEED_BASE. A failing seed prints its invariant, its fault schedule and a
# one-line replay command. PACKAGE_DIR selects the package (default: the repo root).
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
pkg="${PACKAGE_DIR:-$here}"
config="${CONFIG:-debug}"
export RAFT_SEEDS="${1:-${RAFT_SEEDS:-10000}}"
export RAFT_SEED_BASE="${2:-${RAFT_SEED_BASE:-1}}"
cd "$pkg"
swift build --build-tests -c "$config" >/dev/null
start=$(date +%s)
set +e
swift test --skip-build -c "$config" --filter RaftTests.RaftSimulationTests 2>&1 \
    | grep -E "raft-sim:|failed -|schedule:|last events:|replay:|error:" 
status=${PIPESTATUS[0]}
set -e
echo "raft-sim.sh: seeds=${RAFT_SEED:-$RAFT_SEEDS} base=$RAFT_SEED_BASE wall=$(( $(date +%s) - start ))s exit=$status"
exit "$status"
