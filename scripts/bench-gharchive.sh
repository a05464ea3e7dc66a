#!/usr/bin/env bash
# Benchmark (not a test): one simulated GH Archive hour through the release build's
# `ghstats gharchive` (download over loopback, gunzip, parse, Parquet to a file:// lake, load
# into SQLite), beside the floors on the same file: gunzip only, and gunzip + parse.
#   scripts/bench-gharchive.sh [--events N] [--seed S]
# The hour is written by `github-sim gharchive-hour` (payloads from @octokit/webhooks-examples)
# and served by a static file server on 127.0.0.1. MB is 10^6 bytes of JSON after gunzip.
# The last lines are name=value figures:
#   gharchive_events_per_second, gharchive_mb_per_second   download to a whole Parquet object
#   gharchive_peak_rss_mb                                   the ghstats process, load included
#   gunzip_only_mb_per_second, parse_only_mb_per_second     the floors, one thread
#   gharchive_vs_gunzip_ratio                               gharchive_mb_per_second / gunzip_only
set -euo pipefail
cd "$(dirname "$0")/.."
events=150000 seed=7
while [ $# -gt 0 ]; do
  case "$1" in
    --events) events="$2"; shift 2 ;;
    --seed) seed="$2"; shift 2 ;;
    *) echo "usage: scripts/bench-gharchive.sh [--events N] [--seed S]" >&2; exit 2 ;;
  esac
done
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/ghstats-target}"
cargo build --release --locked --quiet -p ghstats -p github-sim --bins --example gharchive_floor
bin="$CARGO_TARGET_DIR/release"
work=$(mktemp -d)
server_pid=""
cleanup() { [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

hour=2024-06-03T14
mkdir -p "$work/archive"
"$bin/github-sim" gharchive-hour --hour "$hour" --events "$events" --seed "$seed" \
  --out "$work/archive/2024-06-03-14.json.gz" >"$work/hour.txt"
gz_bytes=$(stat -c %s "$work/archive/2024-06-03-14.json.gz")

python3 -u -m http.server 0 --bind 127.0.0.1 --directory "$work/archive" >"$work/server.out" 2>&1 &
server_pid=$!
for _ in $(seq 1 100); do grep -q "port" "$work/server.out" 2>/dev/null && break; sleep 0.1; done
port=$(grep -o 'port [0-9]*' "$work/server.out" | head -1 | cut -d' ' -f2)
[ -n "$port" ] || { echo "the file server did not start: $(cat "$work/server.out")" >&2; exit 1; }

# The job, with its peak resident memory (VmHWM) sampled every 50 ms.
GHARCHIVE_URL="http://127.0.0.1:$port" STORAGE_URL="file://$work/lake" \
  WAREHOUSE_URL="sqlite://$work/warehouse.db" LOG_FORMAT=json RUST_LOG=warn \
  "$bin/ghstats" gharchive --from "$hour" --to "$hour" >"$work/result.json" 2>"$work/ghstats.log" &
pid=$! hwm=0
while kill -0 "$pid" 2>/dev/null; do
  h=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
  [ -n "$h" ] && [ "$h" -gt "$hwm" ] && hwm=$h
  sleep 0.05
done
wait "$pid" || { echo "ghstats gharchive failed:" >&2; cat "$work/ghstats.log" "$work/result.json" >&2; exit 1; }

"$bin/examples/gharchive_floor" "$work/archive/2024-06-03-14.json.gz" >"$work/floor.json"

python3 - "$work/result.json" "$work/floor.json" "$hwm" "$gz_bytes" "$(stat -c %s "$work"/lake/gharchive/events/*/*/events.parquet)" <<'PY'
import json, sys
res, floor = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
hwm_kb, gz, parquet = int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
hour = res["hours"][0]
assert hour["status"] == "ingested", hour
s, secs = hour["stats"], hour["ingest_seconds"]
assert s["json_bytes"] == floor["json_bytes"], (s["json_bytes"], floor["json_bytes"])
assert s["events"] == floor["events"], (s["events"], floor["events"])
mb = s["json_bytes"] / 1e6
gunzip = mb / floor["gunzip_seconds"]
parse = mb / floor["parse_seconds"]
rate = mb / secs
print(f"one hour: {s['events']} events, {gz / 1e6:.1f} MB gzip, {mb:.1f} MB JSON, "
      f"{parquet / 1e6:.1f} MB Parquet (zstd); download to Parquet {secs:.2f} s, "
      f"SQLite load {hour['load_seconds']:.2f} s")
print(f"gharchive_events_per_second={s['events'] / secs:.0f}")
print(f"gharchive_mb_per_second={rate:.1f}")
print(f"gharchive_peak_rss_mb={hwm_kb / 1024:.0f}")
print(f"gunzip_only_mb_per_second={gunzip:.1f}")
print(f"parse_only_mb_per_second={parse:.1f}")
print(f"gharchive_vs_gunzip_ratio={rate / gunzip:.2f}")
PY
