#!/usr/bin/env bash
# Runs the images build.sh made, as a cluster would: every container with a read-only root file
# system, on one user-defined network with the Service names as aliases. Checks that each long-
# running image reaches Docker's `healthy` through its own HEALTHCHECK, runs as 65532:65532,
# answers /readyz once the broker is there, that the load image drives the stack to the end, and
# that each container stops with status 0 on `docker stop` (SIGTERM to the binary as PID 1).
#
# Usage: infra/offline/smoke.sh   Environment: IMAGE_TAG (default dev). Run as root.
set -euo pipefail

DOCKER=/usr/bin/docker
IMAGE_TAG=${IMAGE_TAG:-dev}
NETWORK=bank-smoke
PREFIX=bank-smoke-

log() { printf '== %s\n' "$*"; }
fail() { echo "smoke: $*" >&2; exit 1; }

cleanup() {
  local ids
  ids=$($DOCKER ps -aq --filter "name=^$PREFIX") || true
  if [[ -n $ids ]]; then
    # shellcheck disable=SC2086
    $DOCKER rm -fv $ids >/dev/null || true
  fi
  $DOCKER network rm "$NETWORK" >/dev/null 2>&1 || true
}
trap cleanup EXIT
cleanup
$DOCKER network create "$NETWORK" >/dev/null

# run NAME ALIAS IMAGE PORT [ENV...] -- [ARG...]: a detached, read-only container on the
# network, its PORT published on a free loopback port.
run() {
  local name=$1 alias=$2 image=$3 port=$4 envs=()
  shift 4
  while [[ $# -gt 0 && $1 != -- ]]; do envs+=(-e "$1"); shift; done
  [[ $# -gt 0 ]] && shift
  $DOCKER run -d --name "$PREFIX$name" --network "$NETWORK" --network-alias "$alias" \
    --read-only -p "127.0.0.1::$port" "${envs[@]}" "bank-$image:$IMAGE_TAG" "$@" >/dev/null
}

# wait_healthy NAME: Docker's health status turns healthy within 60 s.
wait_healthy() {
  local status=""
  for _ in $(seq 1 60); do
    status=$($DOCKER inspect -f '{{.State.Health.Status}}' "$PREFIX$1")
    [[ $status == healthy ]] && { log "$1 is healthy"; return; }
    [[ $($DOCKER inspect -f '{{.State.Running}}' "$PREFIX$1") == true ]] || break
    sleep 1
  done
  $DOCKER logs --tail 30 "$PREFIX$1" >&2 || true
  fail "$1 is not healthy (status: ${status:-none})"
}

# check_user NAME: the container's process runs as uid and gid 65532.
check_user() {
  local pid uid gid
  pid=$($DOCKER inspect -f '{{.State.Pid}}' "$PREFIX$1")
  uid=$(awk '/^Uid:/ {print $2}' "/proc/$pid/status")
  gid=$(awk '/^Gid:/ {print $2}' "/proc/$pid/status")
  [[ $uid == 65532 && $gid == 65532 ]] || fail "$1 runs as $uid:$gid, not 65532:65532"
}

# check_ready NAME PORT: /readyz answers 200 on the published port.
check_ready() {
  local hostport
  hostport=$($DOCKER port "$PREFIX$1" "$2/tcp" | head -n 1)
  curl -fsS --max-time 5 -o /dev/null "http://$hostport/readyz" \
    || fail "$1: /readyz on $hostport did not answer 200"
  log "$1 answers /readyz on $hostport"
}

nats=NATS_URL=nats://broker:4222
run broker broker broker 8222 -- -js
wait_healthy broker
# Every service image listens on 8080 (the images' HTTP_ADDR).
run account account-service account-service 8080 "$nats" --
run transaction transaction-service transaction-service 8080 "$nats" --
run statement statement-service statement-service 8080 "$nats" --
run console console console 8080 "$nats" ACCOUNT_URLS=http://account-service:8080 \
  TRANSACTION_URL=http://transaction-service:8080 STATEMENT_URL=http://statement-service:8080 --
for name in account transaction statement console; do wait_healthy "$name"; done
for name in broker account transaction statement console; do check_user "$name"; done
log "every container runs as 65532:65532 on a read-only root file system"
check_ready account 8080
check_ready transaction 8080
check_ready statement 8080
check_ready console 8080

log "load against the stack"
$DOCKER run --rm --name "${PREFIX}load" --network "$NETWORK" --read-only "bank-load:$IMAGE_TAG" \
  --account-url http://account-service:8080 --transaction-url http://transaction-service:8080 \
  --nats-url nats://broker:4222 --accounts 10 --transactions 500 --concurrency 16

for name in console statement account transaction broker; do
  $DOCKER stop -t 15 "$PREFIX$name" >/dev/null
  code=$($DOCKER inspect -f '{{.State.ExitCode}}' "$PREFIX$name")
  [[ $code == 0 ]] || { $DOCKER logs --tail 20 "$PREFIX$name" >&2; fail "$name exited $code"; }
done
log "every container stopped with status 0 on SIGTERM"

$DOCKER image ls --format '{{.Repository}}:{{.Tag}}\t{{.Size}}' | grep "^bank-.*:$IMAGE_TAG" | sort
