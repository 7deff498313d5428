#!/usr/bin/env bash
# The console's memory with N browser tabs on its live timeline while the load tool runs:
# starts the release `bank` on a fresh data directory, opens N tabs of the console in one
# headless Chromium, samples the console process's resident memory before, during and after a
# load run, and prints one line per sample.
#
#   cargo build --release -p bank -p e2e-tests --bins
#   tests/scripts/console-memory.sh [tabs=10] [transactions=20000]
set -euo pipefail
cd "$(dirname "$0")/../.."

TABS=${1:-10}
TRANSACTIONS=${2:-20000}
BIN=target/release
DATA=$(mktemp -d)
PROFILE=$(mktemp -d)
trap 'kill $BANK $CHROME 2>/dev/null || true; wait 2>/dev/null; rm -rf "$DATA" "$PROFILE"' EXIT

"$BIN/bank" --data-dir "$DATA" --console-port 0 --transaction-port 0 --account-port 0 \
  --broker-port 0 --monitor-port 0 > "$DATA/table.txt" 2> "$DATA/bank.err" &
BANK=$!
for _ in $(seq 200); do grep -q "the bank is up" "$DATA/table.txt" 2>/dev/null && break; sleep 0.1; done
cat "$DATA/table.txt"
url() { awk -v name="$1" '$1 == name { print $2; exit }' "$DATA/table.txt"; }
CONSOLE=$(url console)
NATS=$(url broker)
CONSOLE_PID=$(pgrep -P "$BANK" -f "bank console")

rss() { awk '/^VmRSS/ { print $2 }' "/proc/$CONSOLE_PID/status"; }
hwm() { awk '/^VmHWM/ { print $2 }' "/proc/$CONSOLE_PID/status"; }
browsers() { curl -s "$CONSOLE/metrics" | awk '$1 == "console_connected_browsers" { print $2 }'; }
sample() { echo "$1: console rss $(rss) KiB, peak $(hwm) KiB, browsers $(browsers)"; }

sample "started, no tab"
chromium --headless=new --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync \
  --user-data-dir="$PROFILE" --remote-debugging-port=0 about:blank \
  2> "$DATA/chrome.err" &
CHROME=$!
for _ in $(seq 100); do grep -q "DevTools listening" "$DATA/chrome.err" && break; sleep 0.1; done
DEVTOOLS=$(sed -n 's|.*DevTools listening on ws://\([^/]*\)/.*|\1|p' "$DATA/chrome.err")
for _ in $(seq "$TABS"); do
  curl -s -X PUT "http://$DEVTOOLS/json/new?$CONSOLE/" > /dev/null
done
sleep 5
sample "$TABS tabs open"

"$BIN/load" --transactions "$TRANSACTIONS" --concurrency 16 --account-url "$(url account-1)" \
  --transaction-url "$(url transaction)" --nats-url "$NATS" > "$DATA/load.txt" 2>&1 &
LOAD=$!
while kill -0 "$LOAD" 2>/dev/null; do sample "under load"; sleep 2; done
wait "$LOAD" || { cat "$DATA/load.txt"; exit 1; }
tail -n 5 "$DATA/load.txt"
sleep 3
sample "after the load"
echo "skipped for slow tabs: $(curl -s "$CONSOLE/metrics" | awk '$1 == "console_events_skipped_total" { print $2 }')"
