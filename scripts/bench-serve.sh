#!/usr/bin/env bash
# Benchmark (not a test): the HTTP service under read load while it collects. Starts the
# simulator and `ghstats serve` (release builds, loopback), starts a backfill with POST
# /backfill, and while it runs sends 1,000 GET /summary and GET /collections/{id} requests over
# 8 connections (examples/http_load.rs). Prints latency percentiles and errors; the last lines
# are name=value figures.
#   scripts/bench-serve.sh [--prs N] [--requests N] [--concurrency C]
set -euo pipefail
cd "$(dirname "$0")/.."
prs=20000 requests=1000 concurrency=8
while [ $# -gt 0 ]; do
  case "$1" in
    --prs) prs="$2"; shift 2 ;;
    --requests) requests="$2"; shift 2 ;;
    --concurrency) concurrency="$2"; shift 2 ;;
    *) echo "usage: scripts/bench-serve.sh [--prs N] [--requests N] [--concurrency C]" >&2; exit 2 ;;
  esac
done
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/ghstats-target}"
cargo build --release --locked --quiet -p ghstats -p github-sim --bin ghstats --bin github-sim --example http_load
bin="$CARGO_TARGET_DIR/release"
work=$(mktemp -d)
sim_pid="" svc_pid="" curl_pid=""
cleanup() {
  for p in "$curl_pid" "$svc_pid" "$sim_pid"; do [ -n "$p" ] && kill "$p" 2>/dev/null; done
  wait 2>/dev/null; rm -rf "$work"
}
trap cleanup EXIT

"$bin/github-sim" --port 0 --org acme --repos 20 --prs "$prs" --seed 42 --days 365 \
  --graphql-limit 100000000 --rest-limit 100000000 >"$work/sim.out" 2>&1 &
sim_pid=$!
for _ in $(seq 1 1200); do grep -q "serving" "$work/sim.out" 2>/dev/null && break; sleep 0.1; done
api=$(grep -o 'http://127.0.0.1:[0-9]*' "$work/sim.out" | head -1)
[ -n "$api" ] || { echo "simulator did not start" >&2; exit 1; }
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
url="http://127.0.0.1:$port"
(cd "$work" && GITHUB_API_URL="$api" GITHUB_TOKEN=bench-token GITHUB_ORG=acme STORAGE_URL="file://$work/lake" \
  WAREHOUSE_URL="sqlite://$work/warehouse.db" LOG_FORMAT=json RUST_LOG=warn PORT="$port" \
  exec "$bin/ghstats" serve >"$work/svc.out" 2>"$work/svc.log") &
svc_pid=$!
for _ in $(seq 1 200); do curl -sf "$url/healthz" >/dev/null && break; sleep 0.05; done
sleep 1.1
curl -s -X POST -H 'content-type: application/json' -d '{"days": 400}' "$url/backfill" >"$work/backfill.json" &
curl_pid=$!
id=""
for _ in $(seq 1 400); do
  id=$( (ls "$work/lake/acme/_checkpoints" 2>/dev/null || true) | head -1 | sed 's/\.json$//')
  [ -n "$id" ] && break; sleep 0.05
done
[ -n "$id" ] || { echo "the backfill did not start: $(cat "$work/svc.log")" >&2; exit 1; }
status=0
"$bin/examples/http_load" "$url" "$id" "$requests" "$concurrency" >"$work/load.txt" || status=$?
if kill -0 "$curl_pid" 2>/dev/null; then during=true; else during=false; fi
wait "$curl_pid" || true
curl_pid=""
cat "$work/load.txt"
python3 - "$work/backfill.json" "$during" <<'PY'
import json, sys
res = json.load(open(sys.argv[1]))
print(f"backfill: {res['status']}, {res['rows'].get('pull_requests', 0)} PRs")
print(f"load_during_collection={sys.argv[2]}")
PY
exit "$status"
