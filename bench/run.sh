#!/usr/bin/env bash
# Benchmarks rfm-agent against Python (pandas / polars + scikit-learn) on the reference data.
# Usage: bench/run.sh [DATA_DIR] [extra bench.py flags, e.g. --runs 3 --skip xlsx]
# Builds the release binary, makes its own Python venv (under ~/.cache), then runs bench.py.
set -euo pipefail
cd "$(dirname "$0")/.."
data="${1:-${RFM_AGENT_REFERENCE_DATA:-../shared/data}}"
[ $# -gt 0 ] && shift
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/rfm-agent-target}"
cargo build --release --locked --bin rfm-agent --example kmeans_bench
venv="$HOME/.cache/rfm-agent-bench/venv"
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
"$venv/bin/pip" install -q pandas scikit-learn polars openpyxl
"$venv/bin/python" bench/bench.py \
    --bin "$CARGO_TARGET_DIR/release/rfm-agent" \
    --kmeans-bin "$CARGO_TARGET_DIR/release/examples/kmeans_bench" \
    --python "$venv/bin/python" --data "$data" --work "${BENCH_WORK:-/tmp/rfm-agent-bench}" "$@"
