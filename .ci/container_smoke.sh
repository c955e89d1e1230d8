#!/usr/bin/env bash
# Smoke test of the service image IMAGE, as an orchestrator would run it (no --init): start
# with a token and a named volume, wait for the health check, upload the built-in sample,
# poll until done, fetch report.html, check 401 without the token, start a second run and
# SIGTERM the container: it must stop within the 10 s grace period, and after a restart on
# the same volume no run is left queued or computing.
# Usage: .ci/container_smoke.sh IMAGE
# (podman logs "unable to get systemd connection" for the health check's timer: this machine
# has no systemd. The check itself is run here with `podman healthcheck run`.)
set -euo pipefail
image="$1"
name=rfm-smoke
volume=rfm-smoke-data
token="$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
port="$(python3 -c "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")"
base="http://127.0.0.1:$port"
fail() { echo "container smoke test: $*" >&2; podman logs "$name" >&2 || true; exit 1; }
start() {
    podman run -d --name "$name" -p "127.0.0.1:$port:8080" -e RFM_AGENT_TOKEN="$token" \
        -v "$volume:/data" "$image" >/dev/null
    for _ in $(seq 1 60); do
        if podman healthcheck run "$name" >/dev/null 2>&1; then return 0; fi
        sleep 1
    done
    fail "the health check did not pass within 60 s"
}
get() { curl -sS --max-time 10 -H "Authorization: Bearer $token" "$@"; }
status_of() { get "$base/v1/runs/$1" | python3 -c "import json, sys; print(json.load(sys.stdin)['run']['status'])"; }

podman rm -f "$name" >/dev/null 2>&1 || true
podman volume rm -f "$volume" >/dev/null 2>&1 || true
start
echo "healthy"

id="$(get -F sample=true "$base/v1/runs" | python3 -c "import json, sys; print(json.load(sys.stdin)['id'])")"
for _ in $(seq 1 180); do
    status="$(status_of "$id")"
    [ "$status" = done ] && break
    [ "$status" = failed ] && fail "the sample run failed: $(get "$base/v1/runs/$id")"
    sleep 1
done
[ "$status" = done ] || fail "the sample run is still $status after 180 s"
echo "sample run $id done"

get -o /tmp/rfm-smoke-report.html -w '%{http_code}' "$base/v1/runs/$id/files/report.html" | grep -qx 200 \
    || fail "report.html was not served"
grep -q "<html" /tmp/rfm-smoke-report.html || fail "report.html is not HTML"
echo "report.html: $(wc -c < /tmp/rfm-smoke-report.html) bytes"

code="$(curl -sS --max-time 10 -o /dev/null -w '%{http_code}' "$base/v1/runs")"
[ "$code" = 401 ] || fail "a request without the token got $code, not 401"
echo "no token: 401"

# A run in flight, then SIGTERM (podman stop sends it, and SIGKILL after 10 s).
second="$(get -F sample=true -F k=auto "$base/v1/runs" | python3 -c "import json, sys; print(json.load(sys.stdin)['id'])")"
t0="$(date +%s%N)"
podman stop -t 10 "$name" >/dev/null
elapsed_ms=$(( ($(date +%s%N) - t0) / 1000000 ))
exit_code="$(podman inspect "$name" --format '{{.State.ExitCode}}')"
echo "SIGTERM: stopped in $elapsed_ms ms, exit code $exit_code"
[ "$elapsed_ms" -lt 10000 ] || fail "the container took $elapsed_ms ms to stop: SIGTERM was not handled"
podman rm "$name" >/dev/null
start
run="$(get "$base/v1/runs/$second")"
status="$(echo "$run" | python3 -c "import json, sys; print(json.load(sys.stdin)['run']['status'])")"
case "$status" in
    done) echo "after a restart, the second run is done (it finished before SIGTERM)" ;;
    failed)
        echo "$run" | grep -q "stopped when the service was shut down" \
            || fail "the run cut short does not say why: $run"
        echo "after a restart, the run cut short is failed: stopped when the service was shut down" ;;
    *) fail "after a restart the run cut short is still $status" ;;
esac
podman rm -f "$name" >/dev/null
podman volume rm -f "$volume" >/dev/null
