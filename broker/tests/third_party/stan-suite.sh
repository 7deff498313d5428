#!/usr/bin/env bash
# Runs a NATS Streaming client's own test suite against the broker in place of
# nats-streaming-server, and reports the tests that fail. Two suites are known:
#   js  node-nats-streaming's mocha tests (the stan.js repository, github.com/nats-io/stan.js;
#       commit 55d1a99 measured), with the suite's own npm dependencies;
#   py  asyncio-nats-streaming's unittest tests (github.com/nats-io/asyncio-nats-streaming;
#       commit e091696 measured), run with pytest on asyncio-nats-streaming 0.4.0 from PyPI.
#       Its NATS client (asyncio-nats-client 0.11) passes `loop=` to asyncio, which Python 3.10
#       removed: it needs Python 3.9 or older (PYTHON), and protobuf 3.20 for its generated code.
#
# The published packages do not ship their tests, so this needs a checkout of the repository
# (an export without .git is fine). The script copies it to a scratch directory, installs the
# suite's dependencies there, and puts a `nats-streaming-server` on PATH that starts the broker
# with NATS Streaming's defaults (cluster ID test-cluster, memory store) before the suite's own
# flags.
#
# Usage: broker/tests/third_party/stan-suite.sh js|py <checkout>
#
# Environment:
#   BROKER_BIN        the broker binary (default: built here with `cargo build --release -p broker`)
#   PYTHON            the interpreter of the py suite (default: python3.8)
#   CARGO_TARGET_DIR  the suite runs under $CARGO_TARGET_DIR/third-party/stan-<suite> (default:
#                     <repo>/target)
#
# Exit status: 0 when every test passes or is a known gap, 1 when another test fails, 2 when the
# suite cannot be set up.
set -euo pipefail
export LC_ALL=C

say() { printf '%s\n' "$*" >&2; }
die() { say "stan-js.sh: $*"; exit 2; }

# Test files that need what the broker does not do, with the reason.
declare -A KNOWN_GAPS=(
    [test/stan_connection_lost.js]="starts two NATS servers joined by routes (clustering) and a streaming server on one of them (-ns); the broker refuses both"
)

[[ $# -eq 2 ]] || die "usage: stan-suite.sh js|py <checkout>"
suite=$1
source_dir=$(cd "$2" && pwd) || die "no directory $2"
case $suite in
js) [[ -f $source_dir/lib/stan.js && -d $source_dir/test ]] || die "$source_dir is not a stan.js checkout"
    command -v node >/dev/null && command -v npm >/dev/null || die "node and npm must be on PATH" ;;
py) [[ -f $source_dir/stan/aio/client.py && -d $source_dir/tests ]] \
        || die "$source_dir is not an asyncio-nats-streaming checkout"
    PYTHON=${PYTHON:-python3.8}
    command -v "$PYTHON" >/dev/null || die "no $PYTHON (the py suite needs Python 3.9 or older)" ;;
*) die "unknown suite $suite (js or py)" ;;
esac

repo=$(cd "$(dirname "$0")/../../.." && pwd)
target=${CARGO_TARGET_DIR:-$repo/target}
if [[ -z ${BROKER_BIN:-} ]]; then
    say "building the broker (release)"
    cargo build --release -p broker --manifest-path "$repo/Cargo.toml" >&2
    BROKER_BIN=$target/release/broker
fi
[[ -x $BROKER_BIN ]] || die "no broker at $BROKER_BIN"

work=$target/third-party/stan-$suite
rm -rf "$work"
mkdir -p "$work/suite" "$work/bin" "$work/results"
cp -R "$source_dir/." "$work/suite/"
rm -rf "$work/suite/node_modules" "$work/suite/.git"
say "installing the suite's dependencies"
case $suite in
js) (cd "$work/suite" && npm install --no-audit --no-fund --ignore-scripts --loglevel=error >&2) \
        || die "npm install failed" ;;
py) "$PYTHON" -m venv "$work/venv" || die "cannot make a virtual environment with $PYTHON"
    "$work/venv/bin/pip" install --quiet --disable-pip-version-check \
        asyncio-nats-streaming==0.4.0 protobuf==3.20.3 pytest >&2 || die "pip install failed" ;;
esac

cat >"$work/bin/nats-streaming-server" <<EOF
#!/bin/sh
# NATS Streaming's defaults first; the suite's flags come after and win.
exec "$BROKER_BIN" -cid test-cluster -st memory "\$@"
EOF
chmod +x "$work/bin/nats-streaming-server"

status=0
passed=0
failed=0
if [[ $suite == py ]]; then
    log=$work/results/client_test.log
    set +e
    (cd "$work/suite" && PATH=$work/bin:$PATH "$work/venv/bin/python" -m pytest -q -p no:warnings \
        -p no:cacheprovider tests/client_test.py) >"$log" 2>&1
    code=$?
    set -e
    summary=$(grep -E '^(=+ )?[0-9]+ (passed|failed)' "$log" | tail -1)
    passed=$(grep -oE '[0-9]+ passed' <<<"$summary" | grep -oE '[0-9]+' || true)
    failed=$(grep -oE '[0-9]+ failed' <<<"$summary" | grep -oE '[0-9]+' || true)
    passed=${passed:-0}
    failed=${failed:-0}
    grep '^FAILED' "$log" >&2 || true
    [[ $code -eq 0 ]] || status=1
    say "asyncio-nats-streaming suite against the broker: $passed passed, $failed failed (log: $log)"
    exit $status
fi
for file in $(cd "$work/suite" && ls test/*.js); do
    log=$work/results/$(basename "$file" .js).log
    set +e
    (cd "$work/suite" && PATH=$work/bin:$PATH ./node_modules/.bin/mocha --timeout 10000 --exit \
        --reporter dot "$file") >"$log" 2>&1
    code=$?
    set -e
    p=$(sed -n 's/^ *\([0-9]*\) passing.*/\1/p' "$log" | tail -1)
    f=$(sed -n 's/^ *\([0-9]*\) failing.*/\1/p' "$log" | tail -1)
    p=${p:-0}
    f=${f:-0}
    passed=$((passed + p))
    failed=$((failed + f))
    if [[ $code -eq 0 ]]; then
        say "$file: $p passed"
    elif [[ -n ${KNOWN_GAPS[$file]:-} ]]; then
        say "$file: $p passed, $f failed (known gap: ${KNOWN_GAPS[$file]})"
    else
        say "$file: $p passed, $f failed (see $log)"
        status=1
    fi
done
say "stan.js suite against the broker: $passed passed, $failed failed"
exit $status
