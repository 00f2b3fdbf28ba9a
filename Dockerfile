# syntax=docker/dockerfile:1.7
#
# The Trimtab operator image: one static binary (Rust, musl, rustls: no libc, no OpenSSL) on
# distroless/static, running as the non-root user 65532 with nothing else in the image: no shell,
# no package manager. The chart runs it with a read-only root filesystem and every capability
# dropped (Pod Security Standard `restricted`).
#
#   docker build -t ghcr.io/trimtab-dev/trimtab:dev .
#   docker buildx build --platform linux/amd64,linux/arm64 -t ghcr.io/trimtab-dev/trimtab:0.1.0 --push .
#
# Multi-arch builds compile natively for each platform (under emulation on a single-arch builder):
# ring's C and assembly need a C toolchain for the target, which Alpine's native one is.

ARG RUST_VERSION=1.95
ARG ALPINE_VERSION=3.22

FROM rust:${RUST_VERSION}-alpine${ALPINE_VERSION} AS build
# gcc and musl headers for ring (rustls' crypto) and the other crates with C parts; make for
# jemalloc, the binary's allocator.
RUN apk add --no-cache musl-dev make
WORKDIR /src
# The whole workspace: Cargo.lock pins every dependency (--locked), and every member's manifest
# (core, e2e, testkit) must be present for the workspace to resolve; the operator and the pure
# core it depends on (core/) are built.
COPY . .
# A fully static executable, whatever the toolchain's default for musl.
ENV RUSTFLAGS="-C target-feature=+crt-static" \
    CARGO_TERM_COLOR=never
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked -p trimtab --bin trimtab \
 && install -D -m 0755 target/release/trimtab /out/trimtab \
 # Fail the build if the binary needs a dynamic loader: the runtime image has none.
 && if readelf -l /out/trimtab | grep -q 'Requesting program interpreter'; then \
      echo "trimtab is dynamically linked" >&2; exit 1; \
    fi \
 && /out/trimtab --help >/dev/null

# distroless/static: CA certificates (for an https Prometheus), /etc/passwd with the nonroot user,
# tzdata; nothing that runs. Pin it by digest in your own builds.
FROM gcr.io/distroless/static-debian12:nonroot
LABEL org.opencontainers.image.title="trimtab" \
      org.opencontainers.image.description="Kubernetes autoscaler that holds service-level objectives at the lowest cost a budget allows" \
      org.opencontainers.image.source="https://github.com/trimtab-dev/trimtab" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /out/trimtab /usr/local/bin/trimtab
USER 65532:65532
# /metrics, /healthz, /readyz; the placement webhook (HTTPS).
EXPOSE 8080 9443
ENTRYPOINT ["/usr/local/bin/trimtab"]
CMD ["run"]
