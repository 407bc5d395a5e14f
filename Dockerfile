#
# The lvsnap image: one Rust binary (controller, node, all-in-one, crd) on
# Debian bookworm with the tools the node plugin runs: lvm2 (lvcreate, lvremove,
# lvs, lvextend, …) and thin-provisioning-tools (thin_check, for thin pools),
# e2fsprogs and xfsprogs (mkfs, resize2fs, xfs_growfs), util-linux (blkid,
# blkdiscard, mount, umount, nsenter for --lvm-command-prefix).
#
# With a registry (Docker >= 23, or any BuildKit, buildah or podman), the
# binary is built in the `build` stage:
#
#   docker build -t lvsnap:0.1.0 --build-arg VERSION=0.1.0 --build-arg REVISION="$(git rev-parse HEAD)" .
#
# From a binary built outside (scripts/build-image, which CI runs): a build
# context named `build` takes the place of the build stage, which is then never
# run. It holds the binary at out/lvsnap; the runtime stage is the same:
#
#   mkdir -p ctx/out && cp target/release/lvsnap ctx/out/
#   docker buildx build --build-context build=ctx --target runtime -t lvsnap:0.1.0 .
#   buildah build --build-context build=ctx --target runtime -t lvsnap:0.1.0 .
#
# No `# syntax=` line: it would make BuildKit fetch a Dockerfile frontend from
# a registry; the builders' own frontends understand everything used here.

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
FROM debian:bookworm-slim AS runtime

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

# Only what the node plugin executes, and the CA bundle for a kubeconfig whose
# API server has a public certificate (kube reads the system roots), from
# Debian's archive (versions float with bookworm's security updates: see
# .hadolint.yaml on DL3008). util-linux and mount are part of the base already;
# they are named so that nobody drops them.
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      ca-certificates \
      e2fsprogs \
      lvm2 \
      mount \
      thin-provisioning-tools \
      util-linux \
      xfsprogs \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/apt /var/log/dpkg.log

COPY --from=build /out/lvsnap /usr/local/bin/lvsnap

# No USER: the node plugin must run as root (LVM, device-mapper, mount); the
# chart runs the controller as uid 65532 through the pod's securityContext
# (nothing in the image needs root or a writable root filesystem for it).
# The entrypoint is exec'd directly: no shell is needed at run time, and
# lvsnap itself runs every tool as argv.
ENTRYPOINT ["/usr/local/bin/lvsnap"]
CMD ["--help"]
