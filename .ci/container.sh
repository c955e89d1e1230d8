#!/usr/bin/env bash
# Builds the container image from the top-level Dockerfile with no registry, and smoke-tests
# it: health check, the built-in sample through the API with the token, report.html, 401
# without the token, a run cut short by SIGTERM, which must stop the container within its
# grace period. Any failing step fails. Times are printed per step.
#
#   .ci/container.sh --prepare         only the base images (.ci/run starts this early)
#   .ci/container.sh --binary PATH     the image around a binary already built (.ci/run: the
#                                      Dockerfile's `cargo build --profile dist`, on the host)
#   .ci/container.sh                   the image from source, as `docker build .` does
#
# Here no registry can be reached, so the two images the Dockerfile starts FROM are made
# locally and cached under ~/.cache/rfm-agent-container (see ../shared/notes/containers.md):
# debian:bookworm-slim from Debian's mirror with debootstrap, and a Rust builder from the
# host's toolchain. From source, crates come from `cargo vendor` (HTTPS to crates.io fails
# inside a container here); the Dockerfile itself is the one users build with `docker build .`.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=source binary=""
case "${1:-}" in
    --prepare) mode=prepare ;;
    --binary) mode=prebuilt binary="$(realpath "${2:?--binary needs a path}")" ;;
    "") ;;
    *) echo "usage: .ci/container.sh [--prepare | --binary PATH]" >&2; exit 2 ;;
esac
cache="$HOME/.cache/rfm-agent-container"
mkdir -p "$cache"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
step() { echo "container: $1 ($(( $(date +%s) - started )) s)"; }
started=$(date +%s)

if ! command -v podman >/dev/null || ! command -v debootstrap >/dev/null || ! command -v runc >/dev/null; then
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq podman buildah runc debootstrap >/dev/null
fi
# crun fails here (cgroups in hybrid mode) and raising rlimits is not allowed: runc, capped limits.
cat > "$cache/containers.conf" <<'EOF'
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[engine]
runtime = "runc"
EOF
export CONTAINERS_CONF="$cache/containers.conf"
step "podman $(podman --version | awk '{print $3}')"

# debian:bookworm-slim, made once from Debian's mirror, slimmed as the official image is.
base=docker.io/library/debian:bookworm-slim
if ! podman image exists "$base"; then
    if [ ! -f "$cache/debian-bookworm-slim.tar.gz" ]; then
        root="$(mktemp -d)"
        $SUDO debootstrap --variant=minbase bookworm "$root" http://deb.debian.org/debian >/dev/null
        $SUDO rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb "$root"/usr/share/doc/* \
            "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/usr/share/locale/*
        echo "deb http://deb.debian.org/debian bookworm main" | $SUDO tee "$root/etc/apt/sources.list" >/dev/null
        $SUDO tar --numeric-owner -C "$root" -c . | podman import --change 'CMD ["bash"]' - "$base" >/dev/null
        $SUDO rm -rf "$root"
        podman save "$base" | gzip -1 > "$cache/debian-bookworm-slim.tar.gz.tmp"
        mv "$cache/debian-bookworm-slim.tar.gz.tmp" "$cache/debian-bookworm-slim.tar.gz"
    else
        gunzip -c "$cache/debian-bookworm-slim.tar.gz" | podman load >/dev/null
    fi
fi
step "base image $base"

# rust:<host version>-slim-bookworm: the host's toolchain in that base, as the official
# image lays it out (/usr/local/cargo, /usr/local/rustup on PATH).
rust_version="$(rustc --version | awk '{print $2}')"
builder="docker.io/library/rust:$rust_version-slim-bookworm"
if ! podman image exists "$builder"; then
    podman build --pull=never -q -t "$builder" -v "$(rustc --print sysroot)":/host-rust:ro \
        -f .ci/rust-builder.Dockerfile .ci >/dev/null
fi
step "builder image $builder"

# compose.yaml, checked by podman-compose's parser (PyPI) with its required variables set.
venv="$cache/venv-compose"
if [ ! -x "$venv/bin/podman-compose" ]; then
    python3 -m venv "$venv" && "$venv/bin/pip" install --quiet podman-compose
fi
RFM_AGENT_TOKEN=ci-token-0123456789 SHOP_DB_PASSWORD=ci "$venv/bin/podman-compose" -f compose.yaml config > "$cache/compose.out"
grep -q 'rfm-agent-data:/data' "$cache/compose.out" || { echo "compose.yaml: no data volume for the service" >&2; exit 1; }
step "compose.yaml parsed ($("$venv/bin/podman-compose" version | head -1))"

[ "$mode" = prepare ] && exit 0

# The build context: the committed tree, files with the current time (tar -m), not the
# commit's: the target folder is cached between builds, and a source file older than the
# last build would not be recompiled.
ctx="$(mktemp -d)"
trap 'rm -rf "$ctx"; podman rm -f rfm-smoke >/dev/null 2>&1 || true; podman volume rm -f rfm-smoke-data >/dev/null 2>&1 || true' EXIT
git archive HEAD | tar -x -m -C "$ctx"
if [ "$mode" = prebuilt ]; then
    # The binary built on the host, stripped, for the Dockerfile's PREBUILT argument.
    install -s "$binary" "$ctx/rfm-agent"
    echo '!rfm-agent' >> "$ctx/.dockerignore"
    build_args=(--build-arg PREBUILT=rfm-agent)
    step "context with the prebuilt binary ($(( $(stat -c %s "$ctx/rfm-agent") / 1000000 )) MB stripped)"
else
    # The vendored crates (kept between runs, redone when Cargo.lock changes) and a cargo
    # config that points at them.
    lock="$(sha256sum Cargo.lock | cut -c1-16)"
    if [ ! -f "$cache/vendor-$lock/.done" ]; then
        rm -rf "$cache"/vendor-*
        # Not --quiet: it also silences the config snippet that goes to stdout.
        cargo vendor --locked --versioned-dirs "$cache/vendor-$lock" > "$cache/vendor-$lock.toml" 2> "$cache/vendor.log" \
            || { cat "$cache/vendor.log" >&2; exit 1; }
        grep -q vendored-sources "$cache/vendor-$lock.toml" || { echo "cargo vendor printed no source config" >&2; exit 1; }
        touch "$cache/vendor-$lock/.done"
    fi
    cp -al "$cache/vendor-$lock" "$ctx/vendor" 2>/dev/null || cp -a "$cache/vendor-$lock" "$ctx/vendor"
    sed "s|$cache/vendor-$lock|vendor|" "$cache/vendor-$lock.toml" >> "$ctx/.cargo/config.toml"
    echo '!vendor/**' >> "$ctx/.dockerignore"
    build_args=(--build-arg CARGO_FLAGS=--offline)
    step "context with vendored crates"
fi

# The image, with the Dockerfile users build (from source, the target folder is a cache
# mount, so a rebuild compiles only what changed). Docker format: OCI image configs have no
# HEALTHCHECK.
podman build --pull=never --format docker --build-arg RUST_VERSION="$rust_version" \
    "${build_args[@]}" -t localhost/rfm-agent:ci "$ctx"
size="$(podman image inspect localhost/rfm-agent:ci --format '{{.Size}}')"
user="$(podman image inspect localhost/rfm-agent:ci --format '{{.Config.User}}')"
step "image built: $(( size / 1000000 )) MB, user $user"
[ "$user" != "" ] && [ "$user" != root ] && [ "$user" != 0 ] || { echo "the image runs as root" >&2; exit 1; }
# A guard against growth: the image is the base (75-77 MB) plus the binary (see the README).
[ "$size" -le 125000000 ] || { echo "the image is $size bytes, more than 125 MB" >&2; exit 1; }
roots="$(podman run --rm --entrypoint grep localhost/rfm-agent:ci -c 'BEGIN CERTIFICATE' /etc/ssl/certs/ca-certificates.crt)"
[ "$roots" -ge 100 ] || { echo "the image has $roots root certificates" >&2; exit 1; }
step "$roots root certificates"

bash .ci/container_smoke.sh localhost/rfm-agent:ci
step "smoke test passed"

# Each build leaves the last image and the build stage's layers untagged (about 200 MB):
# removed, so that runs on the same machine do not fill its disk.
podman image prune -f >/dev/null
step "untagged images removed"
