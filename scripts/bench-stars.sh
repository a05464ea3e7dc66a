#!/usr/bin/env bash
# Benchmark (not a test): a 100,000-repository stars crawl with the release build against the
# simulator's 2-million-repository population, at 1 s per search page (GitHub's take 1-3 s),
# once with a 5,000-point token and once with a 1,000-point one (GitHub Actions' GITHUB_TOKEN).
#   scripts/bench-stars.sh [--target N] [--latency-ms MS]
# The simulator counts GraphQL points with GitHub's formula (every search connection is one
# request, a query costs requests / 100, at least 1) and REST search requests against 30 a
# minute. Its population is built before the clock starts (GitHub's exists already).
# The last lines are name=value figures, per token (suffix _5000 and _1000):
#   stars_repos, stars_graphql_points, stars_rest_search_requests, stars_seconds,
#   stars_peak_rss_mb (the ghstats process, VmHWM, load into SQLite included)
set -euo pipefail
cd "$(dirname "$0")/.."
target=100000 latency=1000
while [ $# -gt 0 ]; do
  case "$1" in
    --target) target="$2"; shift 2 ;;
    --latency-ms) latency="$2"; shift 2 ;;
    *) echo "usage: scripts/bench-stars.sh [--target N] [--latency-ms MS]" >&2; exit 2 ;;
  esac
done
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/ghstats-target}"
cargo build --release --locked --quiet -p ghstats -p github-sim --bins
bin="$CARGO_TARGET_DIR/release"
work=$(mktemp -d)
sim_pid=""
cleanup() { [ -n "$sim_pid" ] && kill "$sim_pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

for limit in 5000 1000; do
  "$bin/github-sim" --port 0 --graphql-limit "$limit" --search-latency-ms "$latency" \
    >"$work/sim-$limit.out" 2>&1 &
  sim_pid=$!
  for _ in $(seq 1 100); do grep -q "http://" "$work/sim-$limit.out" 2>/dev/null && break; sleep 0.1; done
  url=$(grep -o 'http://[0-9.:]*' "$work/sim-$limit.out" | head -1)
  [ -n "$url" ] || { echo "the simulator did not start: $(cat "$work/sim-$limit.out")" >&2; exit 1; }
  # Build the population with a search by another token, off the clock and off the budget.
  curl -sf -o /dev/null -H "Authorization: bearer warm-up" -H "Content-Type: application/json" \
    -d '{"query":"{ search(query: \"is:public\", type: REPOSITORY, first: 0) { repositoryCount } }"}' \
    "$url/graphql"
  curl -sf -o /dev/null -X DELETE "$url/_sim/ledger"
  mkdir -p "$work/$limit"
  GITHUB_API_URL="$url" GITHUB_TOKEN="bench-$limit" STORAGE_URL="file://$work/$limit/lake" \
    WAREHOUSE_URL="sqlite://$work/$limit/warehouse.db" LOG_FORMAT=json RUST_LOG=warn \
    "$bin/ghstats" stars --target "$target" >"$work/$limit/result.json" 2>"$work/$limit/ghstats.log" &
  pid=$! hwm=0 start=$(date +%s.%N)
  while kill -0 "$pid" 2>/dev/null; do
    h=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
    [ -n "$h" ] && [ "$h" -gt "$hwm" ] && hwm=$h
    sleep 0.1
  done
  wait "$pid" || { echo "ghstats stars failed:" >&2; cat "$work/$limit/ghstats.log" "$work/$limit/result.json" >&2; exit 1; }
  end=$(date +%s.%N)
  curl -sf "$url/_sim/ledger" >"$work/$limit/ledger.json"
  kill "$sim_pid"; wait "$sim_pid" 2>/dev/null || true; sim_pid=""
  python3 - "$work/$limit/result.json" "$work/$limit/ledger.json" "$hwm" "$start" "$end" "$limit" <<'PY'
import json, sys
res, ledger = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
hwm_kb, start, end, limit = int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5]), sys.argv[6]
assert res["status"] == "completed", res
# The simulator's own count, with GitHub's formula; the crawl's agrees or it is a bug.
assert ledger["graphql_points"] == res["graphql_points"], (ledger, res)
print(f"# {limit}-point token: {res['ranges_planned']} ranges, {res['graphql_queries']} GraphQL queries")
for name, value in [
    ("stars_repos", res["repos"]),
    ("stars_graphql_points", ledger["graphql_points"]),
    ("stars_rest_search_requests", ledger["rest_requests"]),
    ("stars_seconds", round(end - start, 1)),
    ("stars_peak_rss_mb", round(hwm_kb / 1024, 1)),
]:
    print(f"{name}_{limit}={value}")
PY
done
