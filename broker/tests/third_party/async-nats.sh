#!/usr/bin/env bash
# Runs async-nats 0.51.0's own test suite against the reference nats-server and the broker:
# `third-party.sh async-nats`, kept under its old name (see third-party.sh for the environment).
#
# Usage: broker/tests/third_party/async-nats.sh            build, run on both servers, compare
#        broker/tests/third_party/async-nats.sh --report   compare the last runs again
exec "$(dirname "${BASH_SOURCE[0]}")/third-party.sh" async-nats "$@"
