#!/usr/bin/env bash
# Makes the PostgreSQL image the test support's testcontainers path starts, for an engine that
# cannot pull it: Debian bookworm's postgresql-15 on a debootstrapped minbase root file system
# (docker import), plus infra/offline/postgres/ (an entry point like the official image's), tagged
#   postgres:11-alpine                    testcontainers-modules' default Postgres image, so the
#                                         tests run it unchanged (it is not 11 and not Alpine:
#                                         its labels say so)
#   postgres:15-bookworm                  the image infra/k8s names, for the container run of
#                                         the manifests (infra/containers/run_stack.py)
#   bank-offline/postgres:15-bookworm     the same image under a name that says what it is
# The postgres user is 999:999, as in the official image (the manifests run it as that user).
# Idempotent: an existing postgres:11-alpine is kept (FORCE=1 remakes it); the root file system
# tarball is kept in the cache directory so a remade image skips debootstrap.
# Run as root, with the engine up (engine.sh). Environment: BANK_OFFLINE_CACHE (default
# /var/cache/bank-offline), DEBIAN_MIRROR, FORCE.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
DOCKER=/usr/bin/docker
CACHE=${BANK_OFFLINE_CACHE:-/var/cache/bank-offline}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
SUITE=bookworm
PG_MAJOR=15
IMAGE=postgres:11-alpine
HONEST_IMAGE=bank-offline/postgres:$PG_MAJOR-$SUITE
# The image infra/k8s/base/postgres names; the container run of the manifests uses this one.
MANIFEST_IMAGE=postgres:$PG_MAJOR-$SUITE
ROOTFS_IMAGE=bank-offline/postgresql-rootfs:$PG_MAJOR-$SUITE
ROOTFS=$CACHE/$SUITE-postgresql-$PG_MAJOR.tar
FORCE=${FORCE:-0}

log() { printf '== %s\n' "$*"; }

have_image() { [[ $FORCE != 1 ]] && $DOCKER image inspect "$1" >/dev/null 2>&1; }

# make_rootfs: debootstraps a minbase bookworm with postgresql-$PG_MAJOR into $ROOTFS, without
# the cluster the package's postinst creates and without docs, man pages and translations.
make_rootfs() {
  local dir
  command -v debootstrap >/dev/null || {
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
  }
  log "debootstrap $SUITE with postgresql-$PG_MAJOR"
  mkdir -p "$CACHE/debs"
  dir=$(mktemp -d "$CACHE/postgresql.XXXXXX")
  debootstrap --variant=minbase --cache-dir="$CACHE/debs" --include="postgresql-$PG_MAJOR" \
    "$SUITE" "$dir" "$MIRROR" >"$ROOTFS.debootstrap.log" 2>&1 \
    || { tail -n 20 "$ROOTFS.debootstrap.log" >&2; rm -rf "$dir"; exit 1; }
  # The image makes its own cluster in $PGDATA; Debian's main cluster would only take space.
  rm -rf "$dir/etc/postgresql/$PG_MAJOR/main" "$dir/var/lib/postgresql/$PG_MAJOR/main"
  sed -i 's/^#\?\s*create_main_cluster.*/create_main_cluster = false/' \
    "$dir/etc/postgresql-common/createcluster.conf"
  find "$dir/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
  rm -rf "$dir"/usr/share/{man,info,lintian}/* "$dir"/usr/share/locale/* \
    "$dir"/var/lib/apt/lists/* "$dir"/var/cache/apt/*.bin "$dir"/var/cache/apt/archives/*.deb \
    "$dir"/var/log/*.log "$dir"/var/log/apt/*
  : >"$dir/etc/resolv.conf"
  printf '%s\n' "deb $MIRROR $SUITE main" >"$dir/etc/apt/sources.list"
  tar --numeric-owner -C "$dir" -cf "$ROOTFS.tmp" .
  mv "$ROOTFS.tmp" "$ROOTFS"
  rm -rf "$dir"
}

# package_version: postgresql-$PG_MAJOR's version in the root file system tarball.
package_version() {
  tar -xOf "$ROOTFS" ./var/lib/dpkg/status \
    | awk -v pkg="postgresql-$PG_MAJOR" '
        $1 == "Package:" { found = ($2 == pkg) }
        found && $1 == "Version:" { print $2; found = 0 }'
}

if have_image "$IMAGE" && have_image "$MANIFEST_IMAGE" \
  && [[ $($DOCKER run --rm --entrypoint id "$IMAGE" -u postgres) == 999 ]]; then
  log "$IMAGE is there ($($DOCKER image inspect -f '{{index .Config.Labels "org.opencontainers.image.title"}}' "$IMAGE"))"
  exit 0
fi

[[ -s $ROOTFS ]] || make_rootfs
version=$(package_version)
[[ -n $version ]] || { echo "postgresql-$PG_MAJOR is not in $ROOTFS" >&2; exit 1; }

old_id=$($DOCKER image inspect -f '{{.Id}}' "$IMAGE" 2>/dev/null || true)
log "importing $ROOTFS_IMAGE"
$DOCKER import --change 'CMD ["bash"]' "$ROOTFS" "$ROOTFS_IMAGE" >/dev/null

log "building $IMAGE, $MANIFEST_IMAGE and $HONEST_IMAGE (PostgreSQL $version)"
DOCKER_BUILDKIT=1 $DOCKER build --progress=plain \
  --build-arg BASE_IMAGE="$ROOTFS_IMAGE" \
  --build-arg PG_MAJOR="$PG_MAJOR" \
  --build-arg PG_VERSION="$version" \
  -t "$IMAGE" -t "$HONEST_IMAGE" -t "$MANIFEST_IMAGE" "$here/postgres" >"$CACHE/postgres-image.build.log" 2>&1 \
  || { tail -n 30 "$CACHE/postgres-image.build.log" >&2; exit 1; }
# The root file system stays in the image's first layer; its own tag is not needed, nor is the
# image FORCE=1 replaced (kept if a container still uses it).
$DOCKER rmi "$ROOTFS_IMAGE" >/dev/null
if [[ -n $old_id && $old_id != $($DOCKER image inspect -f '{{.Id}}' "$IMAGE") ]]; then
  $DOCKER rmi "$old_id" >/dev/null 2>&1 || true
fi

$DOCKER image ls --format '{{.Repository}}:{{.Tag}}\t{{.Size}}' "$IMAGE"
