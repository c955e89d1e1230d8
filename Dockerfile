# The rfm-agent service in a container: the `dist` build (release with whole-program LTO, see
# Cargo.toml), then a small non-root runtime.
#   docker build -t rfm-agent .
#   docker run -d -p 8080:8080 -e RFM_AGENT_TOKEN=... -v rfm-agent-data:/data rfm-agent
# See the README, "Run it in a container".

# The oldest Rust that builds Cargo.lock (its rust-version); any newer one works too.
ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-slim-bookworm AS build
# protoc and its well-known types for the Spark Connect client's build script.
RUN apt-get update \
    && apt-get install -y --no-install-recommends protobuf-compiler libprotobuf-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# Extra cargo flags, e.g. --offline with a vendored source tree in the context (CI does).
ARG CARGO_FLAGS=""
# A binary in the context to use instead of compiling one: CI builds it on the host with the
# command below, beside the tests' build and in its cached target folder, and passes it
# (--build-arg PREBUILT=rfm-agent).
ARG PREBUILT=""
# The registry and the target folder are cache mounts: a rebuild compiles only what changed.
# The root certificates go along for the runtime stage.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    if [ -n "$PREBUILT" ]; then \
        install -D -s "$PREBUILT" /out/rfm-agent; \
    else \
        cargo build --profile dist --locked $CARGO_FLAGS --bin rfm-agent \
        && install -D -s target/dist/rfm-agent /out/rfm-agent; \
    fi \
    && cp /etc/ssl/certs/ca-certificates.crt /out/

FROM debian:bookworm-slim
# Root certificates for HTTPS to the LLM providers and TLS to databases: Debian's
# ca-certificates bundle from the rust image (installing the package here would bring
# openssl, 11 MB the binary does not use). Nothing else is needed: glibc is in the base.
COPY --from=build /out/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
RUN useradd --system --no-log-init --uid 10001 --user-group --home-dir /data --no-create-home rfm \
    && install -d -o rfm -g rfm -m 0700 /data
COPY --from=build /out/rfm-agent /usr/local/bin/rfm-agent
USER rfm
WORKDIR /data
VOLUME /data
EXPOSE 8080
# Secrets come from the environment: RFM_AGENT_TOKEN (required: the service listens on all
# interfaces), GEMINI_API_KEY or OPENAI_API_KEY, RFM_AGENT__LLM__* settings.
HEALTHCHECK --interval=10s --timeout=5s --start-period=5s --retries=3 \
    CMD ["rfm-agent", "healthcheck"]
# The binary is PID 1: it handles SIGTERM itself (runs in flight are marked, then it exits).
ENTRYPOINT ["rfm-agent"]
CMD ["serve", "--bind", "0.0.0.0:8080", "--data-dir", "/data"]
