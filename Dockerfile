# syntax=docker/dockerfile:1
#
# The lvsnap image: one static-ish Rust binary (controller, node, all-in-one,
# crd) on Debian bookworm with the tools the node plugin runs: lvm2 (lvcreate,
# lvremove, lvextend, …), e2fsprogs and xfsprogs (mkfs, resize2fs, xfs_growfs),
# util-linux (mount, blkid, nsenter for --lvm-command-prefix).
#
#   docker build -t lvsnap:0.1.0 --build-arg VERSION=0.1.0 --build-arg REVISION="$(git rev-parse HEAD)" .
#
# Needs BuildKit (the default builder of Docker >= 23, or buildah/podman/kaniko).

# ---------------------------------------------------------------- build
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
# build.rs compiles the CSI proto with the pure-Rust protox: no protoc needed.
# The cache mounts keep the registry and target/ between builds (BuildKit).
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked \
 && install -D -m 0755 target/release/lvsnap /out/lvsnap

# ---------------------------------------------------------------- runtime
FROM debian:bookworm-slim

ARG VERSION=0.1.0
ARG REVISION=unknown
ARG SOURCE=""
LABEL org.opencontainers.image.title="lvsnap" \
      org.opencontainers.image.description="Kubernetes CSI driver for LVM volumes and snapshots with OpenStack Cinder's snapshot and quota semantics (driver lvsnap.io)" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.base.name="docker.io/library/debian:bookworm-slim"

# Only what the node plugin executes, from Debian's archive (versions float with
# bookworm's security updates: see .hadolint.yaml on DL3008).
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      ca-certificates \
      e2fsprogs \
      lvm2 \
      util-linux \
      xfsprogs \
 && rm -rf /var/lib/apt/lists/*

COPY --from=build /out/lvsnap /usr/local/bin/lvsnap

# No USER: the node plugin must run as root (LVM, device-mapper, mount); the
# chart runs the controller as a non-root uid through the pod's securityContext.
ENTRYPOINT ["/usr/local/bin/lvsnap"]
CMD ["--help"]
