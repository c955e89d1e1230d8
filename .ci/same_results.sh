#!/usr/bin/env bash
# The container image's binary against the one the tests ran: the same source, built with
# the `dist` profile (whole-program LTO) and with the release profile. Both run the main job
# on the reference data (the built-in sample when RFM_AGENT_REFERENCE_DATA is unset): `agent`
# with the rules and --out (customers, segments, clusters, campaigns, charts, report.html,
# report.md, run manifest), and `segment --format json` on the Parquet copy. Every file and
# every printed byte must be the same; any difference fails, with the files named.
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
        && "$bin" segment "${parquet[@]}" --format json > segment.json)
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
