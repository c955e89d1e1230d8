#!/usr/bin/env bash
# The predicted-value benchmark (issue 15): `rfm-agent clv` (weekly and daily periods) on the
# reference data and its 200x replica (867,800 customers, 108 M lines; built once under
# ~/.cache/rfm-agent-bench/data), against the `lifetimes` package (0.11.3, in its own venv:
# it needs pandas < 3) on the reference data: summary from the transactions, BG/NBD and
# Gamma-Gamma fits, CLV. Wall time and peak memory of each, with /usr/bin/time. Also what
# the models cost every `segment` run (they are on by default): `segment` with and without
# --no-predict at 1x and 200x, and the fit's own time from the -v log.
# Usage: bench/clv.sh [DATA_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
data="${1:-${RFM_AGENT_REFERENCE_DATA:-../shared/data}}"
. bench/prepare.sh polars pyarrow
[ -f "$replicas/online_retail_x200.parquet" ] || "$venv/bin/python" bench/replicate.py 200 "$data" "$replicas"
lt="$HOME/.cache/rfm-agent-bench/venv-lifetimes"
[ -x "$lt/bin/python" ] || python3 -m venv "$lt"
"$lt/bin/pip" install -q lifetimes==0.11.3 pandas==2.1.4 "numpy<2" scipy==1.11.4 pyarrow==14.0.2
bin="$CARGO_TARGET_DIR/release/rfm-agent"
measure() { # LABEL COMMAND...
    local out
    /usr/bin/time -o /tmp/clv-bench.time -f "%e %M" "${@:2}" > /tmp/clv-bench.out 2> /tmp/clv-bench.err
    out=$(tail -1 /tmp/clv-bench.time)
    printf '%-40s %8s s %8.0f MiB\n' "$1" "${out% *}" "$(( ${out#* } / 1024 ))"
}
for size in 1x 200x; do
    file="$data/online_retail.parquet"
    [ "$size" = 200x ] && file="$replicas/online_retail_x200.parquet"
    measure "rfm-agent segment $size --no-predict" "$bin" segment --input "$file" --k 4 --no-predict
    measure "rfm-agent segment $size (models on)" "$bin" segment --input "$file" --k 4 -v
    grep -E "clustered|predictive models done" /tmp/clv-bench.err || true
done
for period in week day; do
    measure "rfm-agent clv 1x ($period)" "$bin" clv --input "$data/online_retail.parquet" --period "$period" --format json
    measure "rfm-agent clv 200x ($period)" "$bin" clv --input "$replicas/online_retail_x200.parquet" --period "$period" --format json
    grep -A6 '"bgnbd"' /tmp/clv-bench.out | tr -d '\n ' ; echo
    measure "lifetimes 1x ($period)" "$lt/bin/python" bench/clv_lifetimes.py "$data/online_retail.parquet" "$period"
    cat /tmp/clv-bench.out
done
