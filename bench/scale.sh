#!/usr/bin/env bash
# The scale benchmark (issue 12): builds the release binary, a Python venv (under ~/.cache)
# with polars, scikit-learn and DuckDB, the 20x and 200x replicas of the reference data (once,
# under ~/.cache/rfm-agent-bench/data), then runs bench/scale.py.
# Usage: bench/scale.sh [DATA_DIR] [scale.py flags, e.g. --runs 5 --only "200x Parquet"]
set -euo pipefail
cd "$(dirname "$0")/.."
data="${1:-${RFM_AGENT_REFERENCE_DATA:-../shared/data}}"
[ $# -gt 0 ] && shift
. bench/prepare.sh pandas scikit-learn polars duckdb
[ -f "$replicas/online_retail_x20.csv.gz" ] || "$venv/bin/python" bench/replicate.py 20 "$data" "$replicas" --csv
[ -f "$replicas/online_retail_x200.parquet" ] || "$venv/bin/python" bench/replicate.py 200 "$data" "$replicas"
"$venv/bin/python" bench/scale.py --bin "$CARGO_TARGET_DIR/release/rfm-agent" \
    --python "$venv/bin/python" --data "$data" --replicas "$replicas" "$@"
