#!/usr/bin/env bash
# Installs Debian's Docker engine (docker.io, 20.10) and starts dockerd by hand, for machines
# without systemd or a running engine. Idempotent: an engine that already answers is left alone.
#
# Uses /usr/bin/docker (Debian's 20.10 CLI), which builds with the daemon's own BuildKit when
# DOCKER_BUILDKIT=1; a newer CLI earlier on PATH may need the buildx plugin for that instead.
# Run as root. Environment: DOCKERD_LOG (default /var/log/dockerd.log).
set -euo pipefail

DOCKER=/usr/bin/docker
DOCKERD_LOG=${DOCKERD_LOG:-/var/log/dockerd.log}
SOCKET=/var/run/docker.sock

log() { printf '== %s\n' "$*"; }

if [[ $(id -u) -ne 0 ]]; then
  echo "run as root: dockerd needs it" >&2
  exit 1
fi

if [[ ! -x /usr/sbin/dockerd || ! -x $DOCKER ]]; then
  log "installing docker.io (Debian)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    docker.io >/dev/null
fi

if $DOCKER version >/dev/null 2>&1; then
  log "dockerd is already running: $($DOCKER version --format '{{.Server.Version}}')"
  exit 0
fi

log "starting dockerd (overlay2; log in $DOCKERD_LOG)"
# setsid: the engine outlives the shell that started it.
setsid /usr/sbin/dockerd --storage-driver=overlay2 --host="unix://$SOCKET" \
  >>"$DOCKERD_LOG" 2>&1 </dev/null &

for _ in $(seq 1 60); do
  if $DOCKER version >/dev/null 2>&1; then
    log "dockerd is up: $($DOCKER version --format '{{.Server.Version}}')"
    exit 0
  fi
  sleep 1
done
echo "dockerd did not answer on $SOCKET within 60 s; the end of $DOCKERD_LOG:" >&2
tail -n 30 "$DOCKERD_LOG" >&2
exit 1
