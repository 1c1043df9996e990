# The ledger in a container: a release build in a Rust image, copied into a slim Debian image
# that runs `ledger serve` as an unprivileged user. The event log, keys and (by default) the
# read model are SQLite files in the volume /var/lib/ledger/data; `compose.yaml` puts the read
# model in PostgreSQL instead. No protoc is needed (the build compiles the .proto files in Rust).
#
#   docker build -t ledger .
#   docker run -p 50051:50051 -p 9184:9184 -v ledger-data:/var/lib/ledger/data ledger

FROM rust:1-bookworm AS build
WORKDIR /src
# Dependencies first, so that a change to the ledger's own code does not rebuild them.
COPY Cargo.toml Cargo.lock build.rs ./
COPY proto proto
RUN mkdir -p src benches \
    && echo 'fn main() {}' > src/main.rs \
    && touch src/lib.rs \
    && for b in append projection scrub_selection intake verify hot_paths; do echo 'fn main() {}' > "benches/$b.rs"; done \
    && cargo build --release --locked --bin ledger \
    && rm -rf src
COPY src src
COPY migrations migrations
COPY projections projections
# Newer than the placeholder build's outputs, so cargo rebuilds the ledger itself.
RUN touch src/main.rs src/lib.rs && cargo build --release --locked --bin ledger

FROM debian:bookworm-slim
# Unpinned on purpose: the image takes the distribution's security fixes when rebuilt.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 ledger \
    && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/ledger --create-home \
       --shell /usr/sbin/nologin ledger \
    && install -d -o ledger -g ledger -m 0700 /var/lib/ledger/data
COPY --from=build /src/target/release/ledger /usr/local/bin/ledger
USER 10001:10001
WORKDIR /var/lib/ledger
# Listen on every interface inside the container; publish only what you need.
ENV LEDGER_DATA_DIR=/var/lib/ledger/data \
    LEDGER_LISTEN=0.0.0.0:50051 \
    LEDGER_METRICS_LISTEN=0.0.0.0:9184 \
    LEDGER_KURRENTDB_LISTEN=0.0.0.0:2113 \
    LEDGER_LOG_FORMAT=json
VOLUME ["/var/lib/ledger/data"]
# gRPC intake, HTTP (/metrics, /healthz, /readyz), KurrentDB protocol.
EXPOSE 50051 9184 2113
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s \
    CMD ["curl", "-fsS", "http://127.0.0.1:9184/healthz"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/ledger"]
CMD ["serve"]
