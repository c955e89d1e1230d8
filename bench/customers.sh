#!/usr/bin/env bash
# Memory a run holds per customer (issue 30): whole runs (`agent --llm off --out`, predictions
# on) of generated files with 1 M and 5 M customers (one to three lines each), peak resident
# memory by /usr/bin/time, less a run of the built-in sample (3,000 customers). The 5 M file
# needs a larger [limits] max_memory_mb than the default, which this script sets.
# bench/customers.sh [--skip-build]
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/rfm-agent-target}"
if [ "${1:-}" != "--skip-build" ]; then
    cargo build --release --locked
fi
BIN="$CARGO_TARGET_DIR/release/rfm-agent"
DATA="$HOME/.cache/rfm-agent-bench/customers"
mkdir -p "$DATA"
for n in 1000000 5000000; do
    [ -f "$DATA/c$n.csv.gz" ] || python3 bench/customers.py "$n" "$DATA/c$n.csv.gz"
done
"$BIN" sample --out "$DATA/sample.csv" >/dev/null 2>&1
OUT="$(mktemp -d)"
trap 'rm -rf "$OUT"' EXIT
peak() { # FILE → peak KiB of a whole run
    RFM_AGENT__LIMITS__MAX_MEMORY_MB=8192 /usr/bin/time -f "%M" "$BIN" agent --llm off \
        --input "$1" --out "$OUT/run" >/dev/null 2>"$OUT/err" || { cat "$OUT/err" >&2; exit 1; }
    tail -n 1 "$OUT/err"
}
base="$(peak "$DATA/sample.csv")"
echo "| customers | peak | bytes per customer (less the sample's $((base / 1024)) MiB) |"
echo "|---:|---:|---:|"
for n in 1000000 5000000; do
    kib="$(peak "$DATA/c$n.csv.gz")"
    echo "| $n | $((kib / 1024)) MiB | $(( (kib - base) * 1024 / n )) |"
done
