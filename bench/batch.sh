#!/usr/bin/env bash
# Benchmarks `rfm-agent batch`: 1,008 items against a local mock answering at once
# (concurrency 16), beside the same items written offline, in one run.
# Usage: bench/batch.sh [--runs N] [--concurrency C]   (PROFILE=dev to skip the release build)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/rfm-agent-target}"
profile="${PROFILE:-release}"
if [ "$profile" = release ]; then
    cargo build --release --locked --bin rfm-agent --example batch_bench
    dir="$CARGO_TARGET_DIR/release"
else
    cargo build --locked --bin rfm-agent --example batch_bench
    dir="$CARGO_TARGET_DIR/debug"
fi
"$dir/examples/batch_bench" "$dir/rfm-agent" "$@"
