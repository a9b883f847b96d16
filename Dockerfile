# syntax=docker/dockerfile:1.7
# One image for every target: `vivesphere serve --target <service>` picks the service, as each
# Kubernetes Deployment does (infrastructure/kubernetes). Build: docker build -t vivesphere:dev .

# --- build: the release binary, with the registry and target dir cached between builds ---
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY crates ./crates
COPY third_party ./third_party
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p vivesphere \
    && install -D -m 0755 target/release/vivesphere /out/vivesphere \
    && install -d -m 0700 /out/state

# --- run: glibc, CA certificates and the binary; no shell, no package manager ---
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/vivesphere /usr/local/bin/vivesphere
# The defaults; in Kubernetes a projected ConfigMap volume is mounted over this directory.
COPY config /etc/vivesphere/config
ENV VIVESPHERE_CONFIG_DIR=/etc/vivesphere/config
# Relative data paths (./data/… in the development profile) land here; in Kubernetes it is
# an emptyDir, as the root filesystem is read-only.
COPY --from=build --chown=10001:10001 /out/state /var/lib/vivesphere
WORKDIR /var/lib/vivesphere
# The same non-root user the manifests run as (Pod Security "restricted", UID ≥ 10000).
USER 10001:10001
EXPOSE 8000
# checkov:skip=CKV_DOCKER_2: Kubernetes probes /health/live and /health/ready; the image has no shell or HTTP client for a HEALTHCHECK.
ENTRYPOINT ["/usr/local/bin/vivesphere"]
# A container is reached through its own interface, not its loopback (`docker run -p
# 8000:8000` must answer); the manifests give their own arguments.
CMD ["serve", "--listen", "0.0.0.0:8000"]
