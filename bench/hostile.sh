#!/usr/bin/env bash
# Peak memory of a release `rfm-agent serve` (default settings) under each class of hostile
# upload: bench/hostile.sh [--skip-build]. Prints one line per case; see bench/hostile.py.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/rfm-agent-target}"
if [ "${1:-}" != "--skip-build" ]; then
    cargo build --release --locked
fi
VENV="$HOME/.cache/rfm-agent-bench/venv"
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c "import polars" 2>/dev/null; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet polars
fi
exec "$VENV/bin/python" bench/hostile.py "$CARGO_TARGET_DIR/release/rfm-agent"
