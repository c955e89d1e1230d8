#!/usr/bin/env bash
# Runs the parsers' property tests (tests/integration/fuzz.rs) with many cases, round after
# round, for MINUTES minutes (default 10), each round with a new seed; prints the cases run.
# bench/fuzz.sh [MINUTES] [CASES_PER_ROUND]
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/rfm-agent-target}"
minutes="${1:-10}"
cases="${2:-20000}"
# The test binary is run directly, so that other cargo commands can use the target folder.
exe=$(cargo test --locked --release --test integration --no-run 2>&1 | sed -n 's/.*Executable .*(\(.*\))$/\1/p' | tail -n 1)
[ -x "$exe" ] || { echo "cannot find the integration test binary" >&2; exit 1; }
end=$(( $(date +%s) + minutes * 60 ))
rounds=0
start=$(date +%s)
properties=$("$exe" --list fuzz:: 2>/dev/null | grep -c ': test$')
while [ "$(date +%s)" -lt "$end" ]; do
    seed="$RANDOM$RANDOM"
    if ! PROPTEST_CASES="$cases" PROPTEST_RNG_SEED="$seed" "$exe" -q fuzz:: > /tmp/rfm-agent-fuzz.log 2>&1; then
        cat /tmp/rfm-agent-fuzz.log
        echo "fuzz: a property failed in round $((rounds + 1)) (seed $seed)" >&2
        exit 1
    fi
    rounds=$((rounds + 1))
    echo "round $rounds (seed $seed): $(grep 'test result' /tmp/rfm-agent-fuzz.log)"
done
echo "fuzz: $rounds rounds x $properties properties x $cases cases = $((rounds * properties * cases)) cases in $(( $(date +%s) - start )) s, no failure"
