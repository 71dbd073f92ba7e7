# syntax=docker/dockerfile:1
# loggate: multi-stage build. The first stage compiles dependencies in a layer
# of their own (rebuilt only when Cargo.toml/Cargo.lock change), then the
# gateway; the runtime image holds the binary, CA certificates and nothing else.

FROM rust:1-slim-bookworm AS build
WORKDIR /src
# Dependencies first: a stub crate with the real manifest. The workspace
# names the test toolkit (testkit/), so its manifest comes too; it is a
# dev-dependency and never built here.
COPY Cargo.toml Cargo.lock ./
COPY testkit/Cargo.toml testkit/
RUN mkdir -p src config examples testkit/src \
    && echo 'fn main() {}' > src/main.rs \
    && touch src/lib.rs testkit/src/lib.rs \
    && touch config/default.toml \
    && cargo build --release --locked --bin loggate \
    && rm -rf src
# Then the gateway itself.
COPY src ./src
COPY config ./config
COPY ui ./ui
RUN touch src/main.rs src/lib.rs \
    && cargo build --release --locked --bin loggate \
    && strip target/release/loggate

FROM debian:bookworm-slim AS runtime
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin loggate \
    && mkdir -p /data && chown loggate /data
COPY --from=build /src/target/release/loggate /usr/local/bin/loggate
USER loggate
ENV HOST=0.0.0.0 PORT=3002 RUST_LOG=info DATA_DIR=/data
# Durable history (HISTORY_STORE=disk, the default): mount a volume here to
# keep it across container replacements.
VOLUME ["/data"]
EXPOSE 3002
HEALTHCHECK --interval=15s --timeout=3s --start-period=5s --retries=3 \
    CMD ["/usr/local/bin/loggate", "healthcheck"]
# SIGTERM starts a graceful shutdown: clients get `event: shutdown`, queues drain.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/loggate"]
CMD ["serve"]
