#!/usr/bin/env bash
# The main job on the embedded default, with no GitHub account: builds ghstats and the GitHub
# simulator, serves a synthetic organization on 127.0.0.1, checks the setup (`ghstats check`),
# backfills it into DIR/lake and loads it into the SQLite warehouse DIR/warehouse.db (default
# DIR: ./data), prints a short velocity summary, and stops the simulator. Exits 0 when all of
# that worked, non-zero otherwise.
# The build goes where scripts/test.sh and the README's commands put it: $CARGO_TARGET_DIR,
# by default ~/.cache/ghstats-target; the binaries land in its release/ folder.
# GHSTATS_BIN_DIR names a directory holding ghstats and github-sim already built: no build then.
#   scripts/demo.sh [DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
dir="${1:-./data}"
command -v python3 >/dev/null || { echo "error: scripts/demo.sh needs python3 (it prints the summary)" >&2; exit 1; }
if [ -n "${GHSTATS_BIN_DIR:-}" ]; then
  bin="$GHSTATS_BIN_DIR"
else
  command -v cargo >/dev/null || { echo "error: cargo is not on PATH: install Rust first (https://rustup.rs)" >&2; exit 1; }
  export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/ghstats-target}"
  bin="$CARGO_TARGET_DIR/release"
  echo "building ghstats and the GitHub simulator into $bin"
  echo "(the first build compiles about 450 crates: 10-15 minutes on 2 cores; later builds take seconds)"
  cargo build --release --locked -p ghstats -p github-sim
  echo "built: $bin/ghstats and $bin/github-sim"
fi
mkdir -p "$dir"
log=$(mktemp)
"$bin/github-sim" --port 0 --org acme --repos 6 --prs 1500 --seed 1 --days 180 >"$log" 2>&1 &
sim_pid=$!
# The script's own status survives the clean-up: `wait` on the killed simulator answers 143,
# which must not become the demo's exit status.
cleanup() {
  local status=$?
  kill "$sim_pid" 2>/dev/null || true
  wait "$sim_pid" 2>/dev/null || true
  rm -f "$log"
  exit "$status"
}
trap cleanup EXIT
for _ in $(seq 1 300); do grep -q serving "$log" && break; sleep 0.1; done
url=$(grep -o 'http://127.0.0.1:[0-9]*' "$log" | head -1)
[ -n "$url" ] || { echo "the simulator did not start: $(cat "$log")" >&2; exit 1; }
echo "simulated organization 'acme' at $url"
export GITHUB_API_URL="$url" GITHUB_TOKEN=demo GITHUB_ORG=acme STORAGE_URL="file://$dir/lake" \
  WAREHOUSE_URL="sqlite://$dir/warehouse.db"
echo
echo "\$ ghstats check --days 180     # what to run first against a real organization"
"$bin/ghstats" check --days 180
echo
echo "\$ ghstats backfill --days 180"
"$bin/ghstats" backfill --days 180 >"$dir/last-collection.json"
python3 - "$dir/last-collection.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
c = r["api_cost"]
prs = r["rows"].get("pull_requests", 0)
print(f"collection {r['collection_id']}: {r['status']}")
for table, n in sorted(r["rows"].items()):
    print(f"  {table:16} {n:7} rows")
print(f"API cost: {c['graphql_queries']} GraphQL queries ({c['graphql_points']} points) + {c['rest_requests']} REST requests for {prs} pull requests")
load = r.get("load") or {}
print(f"loaded {load.get('chunks', 0)} chunks: " + ", ".join(f"{t} +{l['inserted']}" for t, l in sorted(load.get("tables", {}).items())))
PY
python3 - "$dir/warehouse.db" <<'PY'
import sqlite3, sys
db = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
def median(sql):
    xs = sorted(v for (v,) in db.execute(sql) if v is not None)
    return xs[len(xs) // 2] if xs else None
print("\nvelocity (last 180 days):")
print(f"  median hours to first review: {median('SELECT hours_to_first_review FROM pr_velocity')}")
print(f"  median hours to merge:        {median('SELECT hours_to_merge FROM pr_velocity')}")
print("  last four weeks (opened / merged / median hours to merge):")
for week, o, m, med in db.execute("SELECT week, prs_opened, prs_merged, median_hours_to_merge FROM weekly_throughput ORDER BY week DESC LIMIT 4"):
    print(f"    {week}: {o:4} / {m:4} / {med}")
print("  busiest reviewers:")
for who, n in db.execute("SELECT reviewer, reviews_given FROM reviewer_load WHERE reviewer_type <> 'Bot' ORDER BY reviews_given DESC LIMIT 3"):
    print(f"    {who}: {n} reviews")
PY
echo
echo "chunks and checkpoint under $dir/lake/acme/; warehouse: $dir/warehouse.db"
echo "try: sqlite3 -header -column $dir/warehouse.db < queries/sqlite/velocity_by_author.sql"
