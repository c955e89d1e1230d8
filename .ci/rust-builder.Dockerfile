# CI only (no registry here): a stand-in for the official rust:<version>-slim-bookworm image,
# made from the local debian:bookworm-slim and the host's toolchain, bind-mounted at
# /host-rust by .ci/container.sh. Laid out as the official image is.
FROM debian:bookworm-slim
ENV RUSTUP_HOME=/usr/local/rustup CARGO_HOME=/usr/local/cargo PATH=/usr/local/cargo/bin:/usr/local/rust/bin:$PATH
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && mkdir -p /usr/local/rust /usr/local/cargo/bin \
    && cp -a /host-rust/bin /host-rust/lib /usr/local/rust/ \
    && rustc --version && cargo --version
