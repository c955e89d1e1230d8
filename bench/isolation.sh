#!/usr/bin/env bash
# What running each service run in its own process costs (issue 30): the time to start
# `rfm-agent run-job`, hand it a spec on its standard input and have it read and check it
# (a spec of another schema, which it refuses at once), over 50 starts; and a whole service
# run of the built-in sample against the same run on the command line.
# bench/isolation.sh [--skip-build]
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/rfm-agent-target}"
if [ "${1:-}" != "--skip-build" ]; then
    cargo build --release --locked
fi
exec python3 bench/isolation.py "$CARGO_TARGET_DIR/release/rfm-agent"
