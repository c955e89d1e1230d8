# Sourced by the benchmark scripts: the release binary, the venv under ~/.cache with the given
# PyPI packages, and the folder of replicas. Sets $venv and $replicas.
# Usage: . bench/prepare.sh PACKAGE...
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/rfm-agent-target}"
cargo build --release --locked --bin rfm-agent
venv="$HOME/.cache/rfm-agent-bench/venv"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install -q "$@"
replicas="${RFM_AGENT_REPLICAS:-$HOME/.cache/rfm-agent-bench/data}"
mkdir -p "$replicas"
