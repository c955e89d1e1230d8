#!/usr/bin/env bash
# Two binaries give the same results: the container image's binary against the one the tests
# ran (the same source, built with the `dist` profile and with the release profile), or a
# binary built before a change against one built after it. Both run, on the reference data
# (the built-in sample when RFM_AGENT_REFERENCE_DATA is unset): `agent` with the rules and
# --out (customers, segments, clusters, campaigns, charts, report.html, report.md, run
# manifest); `segment --format json` on the Parquet copy; `clv --out` (clv.json,
# predictions.csv); `compare --out` of the agent's folder against a k = 3 run (migration.json,
# the chart); and `batch` over the agent's folder with the offline templates (the JSONL and
# its summary). Every file and every printed byte must be the same; any difference fails,
# with the files named.
#
#   .ci/same_results.sh TESTED_BINARY OTHER_BINARY
set -euo pipefail
usage="usage: .ci/same_results.sh TESTED_BINARY OTHER_BINARY"
tested="$(realpath "${1:?$usage}")"
other="$(realpath "${2:?$usage}")"
started=$(date +%s)

csv=() parquet=()
if [ -n "${RFM_AGENT_REFERENCE_DATA:-}" ]; then
    csv=(--input "$RFM_AGENT_REFERENCE_DATA/online_retail.csv.gz")
    parquet=(--input "$RFM_AGENT_REFERENCE_DATA/online_retail.parquet")
fi
dir="$(mktemp -d)"
trap 'rm -rf "$dir"' EXIT
for name in tested other; do
    bin="${!name}"
    mkdir "$dir/$name"
    # Run from inside the folder: nothing of the two paths can differ in what is written.
    (cd "$dir/$name" && "$bin" agent "${csv[@]}" --llm off --out out > agent.txt \
        && "$bin" segment "${parquet[@]}" --format json > segment.json \
        && "$bin" clv "${parquet[@]}" --out clv > clv.txt \
        && "$bin" segment "${parquet[@]}" -k 3 --out k3 > k3.txt \
        && "$bin" compare out k3 --out migration > compare.txt \
        && "$bin" batch --run out --llm off --channels email,sms --locales en,de \
            --out batch.jsonl > batch.txt)
done

files="$(cd "$dir/tested" && find . -type f | sort)"
count="$(echo "$files" | wc -l)"
[ "$count" -ge 8 ] || { echo "same_results: only $count files written: $files" >&2; exit 1; }
if ! diff -r "$dir/tested" "$dir/other" > "$dir/diff.txt"; then
    echo "same_results: $(basename "$other") differs from $(basename "$tested") (the tested binary):" >&2
    head -c 4000 "$dir/diff.txt" >&2
    exit 1
fi
echo "same_results: $count files and outputs identical ($(( $(date +%s) - started )) s)"
