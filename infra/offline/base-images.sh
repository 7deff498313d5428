#!/usr/bin/env bash
# Makes the base images infra/Dockerfile names, for an engine that cannot pull them:
#   debian:bookworm-slim  a Debian bookworm minbase root file system (debootstrap)
#   rust:1-slim-bookworm  the same plus gcc, libc6-dev, pkg-config and ca-certificates, with this
#                         machine's Rust toolchain (rustup, its default toolchain without docs)
#                         under /usr/local/rustup and /usr/local/cargo, as in the official image
# Idempotent: an image whose tag exists is kept (FORCE=1 remakes both); root file system tarballs
# are kept in the cache directory so a remade image skips debootstrap.
# Run as root, with the engine up (engine.sh). Environment: BANK_OFFLINE_CACHE (default
# /var/cache/bank-offline), DEBIAN_MIRROR, RUNTIME_IMAGE and RUST_IMAGE (the Dockerfile's ARGs).
set -euo pipefail

DOCKER=/usr/bin/docker
CACHE=${BANK_OFFLINE_CACHE:-/var/cache/bank-offline}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
SUITE=bookworm
RUNTIME_IMAGE=${RUNTIME_IMAGE:-debian:bookworm-slim}
RUST_IMAGE=${RUST_IMAGE:-rust:1-slim-bookworm}
FORCE=${FORCE:-0}
BASE_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

log() { printf '== %s\n' "$*"; }

have_image() { [[ $FORCE != 1 ]] && $DOCKER image inspect "$1" >/dev/null 2>&1; }

# rootfs_tarball NAME [PACKAGE,...]: debootstraps a minbase bookworm with the extra packages into
# $CACHE/NAME.tar unless that tarball is there already.
rootfs_tarball() {
  local name=$1 include=${2:-} tarball=$CACHE/$1.tar dir
  if [[ -s $tarball ]]; then
    return
  fi
  command -v debootstrap >/dev/null || {
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
  }
  log "debootstrap $SUITE ($name${include:+: $include})"
  dir=$(mktemp -d "$CACHE/$name.XXXXXX")
  debootstrap --variant=minbase --cache-dir="$CACHE/debs" ${include:+--include="$include"} \
    "$SUITE" "$dir" "$MIRROR" >"$CACHE/$name.debootstrap.log" 2>&1 \
    || { tail -n 20 "$CACHE/$name.debootstrap.log" >&2; rm -rf "$dir"; exit 1; }
  slim_rootfs "$dir"
  tar --numeric-owner -C "$dir" -cf "$tarball.tmp" .
  mv "$tarball.tmp" "$tarball"
  rm -rf "$dir"
}

# slim_rootfs DIR: what the official slim images leave out (docs, man pages, apt's lists and
# caches), and a dpkg configuration that keeps it out of later installs.
slim_rootfs() {
  local dir=$1
  cat >"$dir/etc/dpkg/dpkg.cfg.d/docker-slim" <<'CFG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/lintian/*
CFG
  find "$dir/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
  rm -rf "$dir"/usr/share/{man,info,lintian}/* "$dir"/usr/share/locale/* \
    "$dir"/var/lib/apt/lists/* "$dir"/var/cache/apt/*.bin "$dir"/var/cache/apt/archives/*.deb \
    "$dir"/var/log/*.log "$dir"/var/log/apt/*
  : >"$dir/etc/resolv.conf"
  printf '%s\n' "deb $MIRROR $SUITE main" >"$dir/etc/apt/sources.list"
}

# rust_toolchain DIR NAME: the host's toolchain NAME and rustup, laid out as the official image
# has them (DIR/usr/local/rustup, DIR/usr/local/cargo/bin).
rust_toolchain() {
  local dir=$1 name=$2 rustup_home=${RUSTUP_HOME:-$HOME/.rustup}
  local cargo_home=${CARGO_HOME:-$HOME/.cargo} source
  source=$(readlink -f "$rustup_home/toolchains/$name")
  mkdir -p "$dir/usr/local/rustup/toolchains/$name" "$dir/usr/local/cargo/bin"
  tar -C "$source" --exclude=./share/doc -cf - . \
    | tar -C "$dir/usr/local/rustup/toolchains/$name" -xf -
  cat >"$dir/usr/local/rustup/settings.toml" <<TOML
version = "12"
default_toolchain = "$name"
profile = "minimal"
auto_self_update = "disable"
TOML
  cp "$cargo_home/bin/rustup" "$dir/usr/local/cargo/bin/rustup"
  for tool in cargo cargo-clippy cargo-fmt clippy-driver rustc rustdoc rustfmt; do
    ln -sf rustup "$dir/usr/local/cargo/bin/$tool"
  done
  chmod -R a+rX "$dir/usr/local/rustup" "$dir/usr/local/cargo"
}

mkdir -p "$CACHE/debs"

if have_image "$RUNTIME_IMAGE"; then
  log "$RUNTIME_IMAGE is there"
else
  rootfs_tarball bookworm-minbase
  log "importing $RUNTIME_IMAGE"
  $DOCKER import --change "ENV PATH=$BASE_PATH" --change 'CMD ["bash"]' \
    "$CACHE/bookworm-minbase.tar" "$RUNTIME_IMAGE" >/dev/null
fi

if have_image "$RUST_IMAGE"; then
  log "$RUST_IMAGE is there"
else
  rootfs_tarball bookworm-build gcc,libc6-dev,pkg-config,ca-certificates
  staging=$(mktemp -d "$CACHE/rust.XXXXXX")
  trap 'rm -rf "$staging" "$staging.tar"' EXIT
  toolchain=$(rustup default | awk '{print $1}')
  rust_toolchain "$staging" "$toolchain"
  version=$("$staging/usr/local/rustup/toolchains/$toolchain/bin/rustc" --version)
  version=$(awk '{print $2}' <<<"$version")
  log "importing $RUST_IMAGE (Rust $version)"
  # One tarball, one layer: a copy of the root file system with the toolchain appended.
  cp "$CACHE/bookworm-build.tar" "$staging.tar"
  tar --numeric-owner -rf "$staging.tar" -C "$staging" ./usr/local/rustup ./usr/local/cargo
  $DOCKER import \
    --change 'ENV RUSTUP_HOME=/usr/local/rustup' \
    --change 'ENV CARGO_HOME=/usr/local/cargo' \
    --change "ENV PATH=/usr/local/cargo/bin:$BASE_PATH" \
    --change "ENV RUST_VERSION=$version" \
    --change 'CMD ["bash"]' \
    "$staging.tar" "$RUST_IMAGE" >/dev/null
  rm -f "$staging.tar"
fi

$DOCKER image ls --format '{{.Repository}}:{{.Tag}}\t{{.Size}}' "$RUNTIME_IMAGE"
$DOCKER image ls --format '{{.Repository}}:{{.Tag}}\t{{.Size}}' "$RUST_IMAGE"
