#!/usr/bin/env bash
# Runs the parsers' property tests (tests/integration/fuzz.rs) with many cases, round after
# round, for MINUTES minutes (default 10), each round with a new seed; prints the cases run.
# bench/fuzz.sh [MINUTES] [CASES_PER_ROUND]
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/rfm-agent-target}"
minutes="${1:-10}"
cases="${2:-20000}"
cargo test --locked --test integration --no-run
end=$(( $(date +%s) + minutes * 60 ))
rounds=0
start=$(date +%s)
while [ "$(date +%s)" -lt "$end" ]; do
    PROPTEST_CASES="$cases" PROPTEST_RNG_SEED="$RANDOM$RANDOM" \
        cargo test --locked --test integration -q fuzz:: 2>&1 | tail -n 3
    rounds=$((rounds + 1))
done
tests=$(grep -c '^    fn ' tests/integration/fuzz.rs)
echo "fuzz: $rounds rounds x $tests properties x $cases cases = $((rounds * tests * cases)) cases in $(( $(date +%s) - start )) s, no failure"
