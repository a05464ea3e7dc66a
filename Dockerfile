# ghstats: a release build in stages, the dependencies in their own cached layer (cargo-chef),
# and a distroless runtime with the binary, CA certificates and git's fetch and log (no shell,
# no perl), as a numeric non-root user.
#   docker build -t ghstats .
#   docker run -p 8080:8080 -e GITHUB_ORG=... -e GITHUB_TOKEN=... -e AUTH_MODE=token -e AUTH_TOKEN=... ghstats

ARG RUST_VERSION=1.91

FROM rust:${RUST_VERSION}-slim-bookworm AS chef
RUN cargo install cargo-chef --locked --version 0.1.78
WORKDIR /src

# The dependency recipe: changes only when Cargo.toml or Cargo.lock do.
FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS builder
COPY --from=planner /src/recipe.json recipe.json
RUN cargo chef cook --release --locked --recipe-path recipe.json --package ghstats --bin ghstats
COPY . .
RUN cargo build --release --locked --package ghstats --bin ghstats

# git for the commits job (fetch over HTTPS, then `git log`): the binary, git-remote-http(s) and
# the libraries they load, about 22 MB (scripts/git-runtime.sh), without perl or a shell.
FROM debian:bookworm-slim AS git
RUN apt-get update \
    && apt-get install -y --no-install-recommends git=1:2.39.5-0+deb12u3 \
    && rm -rf /var/lib/apt/lists/*
COPY scripts/git-runtime.sh /git-runtime.sh
RUN sh /git-runtime.sh /git-runtime

# glibc, libgcc, CA certificates and tzdata; no shell, no package manager.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=builder /src/target/release/ghstats /usr/local/bin/ghstats
COPY --from=git /git-runtime /
USER 65532:65532
# Cloud Run sets PORT; the service listens on all interfaces inside the container.
ENV HOST=0.0.0.0 \
    PORT=8080 \
    HOME=/tmp \
    GIT_CACHE_DIR=/tmp/ghstats-git \
    LOG_FORMAT=json
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/ghstats"]
CMD ["serve"]
