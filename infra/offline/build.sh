#!/usr/bin/env bash
# Builds every image of infra/Dockerfile without a registry: starts the engine (engine.sh), makes
# the base images (base-images.sh), then builds the unchanged Dockerfile from a prepared context,
# a copy of the working tree plus `cargo vendor`'s vendor/ and a .cargo/config.toml that replaces
# crates.io with it. Each target T is tagged bank-T and bank-T:$IMAGE_TAG, the skaffold artifact
# names (bank-broker, bank-account-service, bank-transaction-service, bank-statement-service,
# bank-console, bank-load).
#
# Usage: infra/offline/build.sh [TARGET...]   (default: every target)
# Environment: BANK_OFFLINE_CACHE (default /var/cache/bank-offline), IMAGE_TAG (default dev),
# CARGO_PROFILE (default dist). Run as root.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
DOCKER=/usr/bin/docker
CACHE=${BANK_OFFLINE_CACHE:-/var/cache/bank-offline}
IMAGE_TAG=${IMAGE_TAG:-dev}
CARGO_PROFILE=${CARGO_PROFILE:-dist}
context=$CACHE/context
targets=("$@")
if [[ ${#targets[@]} -eq 0 ]]; then
  targets=(broker account-service transaction-service statement-service console load)
fi

log() { printf '== %s\n' "$*"; }

"$here/engine.sh"
"$here/base-images.sh"

# The working tree as git sees it (tracked and untracked files, not ignored ones), in place of
# the last copy; vendor/ and .cargo/ are kept, and remade only when Cargo.lock changes.
log "build context in $context"
mkdir -p "$context"
find "$context" -mindepth 1 -maxdepth 1 -not -name vendor -not -name .cargo -exec rm -rf {} +
git -C "$repo" ls-files -z --cached --others --exclude-standard \
  | tar -C "$repo" --null -T - --ignore-failed-read -cf - 2>/dev/null \
  | tar -C "$context" -xf -

lock_sum=$(sha256sum "$repo/Cargo.lock" | cut -d' ' -f1)
if [[ $(cat "$context/vendor/.lock-sha256" 2>/dev/null) != "$lock_sum" ]]; then
  log "cargo vendor (Cargo.lock changed)"
  rm -rf "$context/vendor" "$context/vendor.new"
  cargo vendor --locked --manifest-path "$repo/Cargo.toml" "$context/vendor.new" >/dev/null
  # Crates keep the fixed timestamp of their package, and BuildKit sends a context file again
  # only when its size or time changed: a crate replaced by another version of the same size
  # (vendor/crypto-common, say) would reach the build stale and fail its checksum. New times
  # make every vendored file count as changed.
  find "$context/vendor.new" -exec touch -h {} +
  echo "$lock_sum" >"$context/vendor.new/.lock-sha256"
  mv "$context/vendor.new" "$context/vendor"
fi
mkdir -p "$context/.cargo"
cat >"$context/.cargo/config.toml" <<'TOML'
# Written by infra/offline/build.sh: crates come from vendor/, never from the network.
[source.crates-io]
replace-with = "vendored-sources"

[source.vendored-sources]
directory = "vendor"

[net]
offline = true
TOML

for target in "${targets[@]}"; do
  log "building $target"
  start=$(date +%s)
  DOCKER_BUILDKIT=1 $DOCKER build --progress=plain \
    --build-arg CARGO_PROFILE="$CARGO_PROFILE" \
    -f "$context/infra/Dockerfile" --target "$target" \
    -t "bank-$target" -t "bank-$target:$IMAGE_TAG" "$context"
  log "$target built in $(($(date +%s) - start)) s"
done

$DOCKER image ls --format '{{.Repository}}:{{.Tag}}\t{{.Size}}' | grep '^bank-' | sort
