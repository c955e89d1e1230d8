#!/usr/bin/env bash
# The engines benchmark (issue 14): the 20x replica of the reference data through the local
# engine (Parquet, CSV.gz), PostgreSQL (a table loaded from the replica) and Spark Connect on
# local[2] (the cluster reads the Parquet and the CSV.gz). Builds the release binary, the venv
# and the replica (as bench/scale.sh, under ~/.cache/rfm-agent-bench), starts both servers on
# loopback with .ci/postgres.sh and .ci/spark.sh, runs bench/engines.py and stops them.
# Usage: bench/engines.sh [DATA_DIR] [engines.py flags, e.g. --runs 5]
set -euo pipefail
cd "$(dirname "$0")/.."
data="${1:-${RFM_AGENT_REFERENCE_DATA:-../shared/data}}"
[ $# -gt 0 ] && shift
. bench/prepare.sh polars
[ -f "$replicas/online_retail_x20.csv.gz" ] || "$venv/bin/python" bench/replicate.py 20 "$data" "$replicas" --csv

work="$(mktemp -d)"
chmod 755 "$work"  # the postgres user keeps its cluster below it
free_port() { python3 -c "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])"; }
pg_port="$(free_port)"; spark_port="$(free_port)"
password="bench-$(python3 -c 'import secrets; print(secrets.token_hex(8))')"
cleanup() {
    kill $(cat "$work/spark/pids" 2>/dev/null) 2>/dev/null || true
    if [ -n "${pg_bin:-}" ]; then
        if [ "$(id -u)" -eq 0 ]; then
            runuser -u postgres -- "$pg_bin/pg_ctl" -D "$work/pg/data" stop -m fast >/dev/null 2>&1 || true
        else
            "$pg_bin/pg_ctl" -D "$work/pg/data" stop -m fast >/dev/null 2>&1 || true
        fi
    fi
    rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work/spark" "$work/pgsrc"
.ci/spark.sh local "$work/spark" "$spark_port"
# postgres.sh loads DATA/online_retail.csv.gz: give it the replica under that name.
ln -s "$replicas/online_retail_x20.csv.gz" "$work/pgsrc/online_retail.csv.gz"
started=$(date +%s)
pg_bin="$(.ci/postgres.sh "$work/pg" "$pg_port" "$password" "$work/pgsrc")"
echo "PostgreSQL loaded the 20x replica in $(( $(date +%s) - started )) s"
.ci/spark.sh wait "$spark_port" 180
PGPASSWORD="$password" python3 bench/engines.py --bin "$CARGO_TARGET_DIR/release/rfm-agent" \
    --replicas "$replicas" --postgres "postgres://postgres@127.0.0.1:$pg_port/postgres" \
    --spark "sc://127.0.0.1:$spark_port" "$@"
