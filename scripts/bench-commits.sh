#!/usr/bin/env bash
# Benchmark (not a test): the commits job on two histories, the fd repository
# (../shared/fixtures/git/fd.bundle, about 2,000 commits) and a synthetic one of
# --synthetic-commits commits (50,000 by default, `github-sim git-synthetic`), each beside
# `git log --numstat -M --diff-merges=first-parent` of the same history in the same run.
#   scripts/bench-commits.sh [--synthetic-commits N]
# Per repository (suffix _fd and _synthetic), name=value lines:
#   commits                         commits on the default branch
#   commits_per_second              the job's reading (examples/commits_read: git log --raw
#                                   --numstat over one reader per core, blob sizes, rows,
#                                   Parquet encoding), from a local bare repository
#   git_numstat_commits_per_second  `git log --numstat -M --diff-merges=first-parent HEAD`
#   commits_vs_git_numstat_ratio    the first over the second (goal: at least 1.0)
#   commits_job_seconds             `ghstats commits` end to end against the simulator: fetch
#                                   over smart HTTP, authors from GraphQL, Parquet into a
#                                   file:// lake, load into SQLite
#   commits_peak_rss_mb             that run's ghstats process (VmHWM; git children apart)
#   commits_graphql_points_per_1000 GraphQL points per 1,000 commits, counted by the simulator
#                                   with GitHub's formula (goal: at most 20)
#   commits_rest_requests           REST requests, counted by the simulator (goal: 0)
set -euo pipefail
cd "$(dirname "$0")/.."
synthetic=50000
while [ $# -gt 0 ]; do
  case "$1" in
    --synthetic-commits) synthetic="$2"; shift 2 ;;
    *) echo "usage: scripts/bench-commits.sh [--synthetic-commits N]" >&2; exit 2 ;;
  esac
done
bundle=../shared/fixtures/git/fd.bundle
[ -f "$bundle" ] || { echo "error: $bundle is missing (../shared beside the clone)" >&2; exit 1; }
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/ghstats-target}"
cargo build --release --locked --quiet -p ghstats -p github-sim --bins
cargo build --release --locked --quiet -p ghstats --example commits_read
bin="$CARGO_TARGET_DIR/release"
work=$(mktemp -d)
sim_pid=""
cleanup() { [ -n "$sim_pid" ] && kill "$sim_pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

git clone --quiet --bare "$bundle" "$work/fd.git"
# The bundle's history is its HEAD; give it a branch as GitHub's repositories have.
git --git-dir "$work/fd.git" update-ref refs/heads/main HEAD
git --git-dir "$work/fd.git" symbolic-ref HEAD refs/heads/main
t0=$(date +%s.%N)
"$bin/github-sim" git-synthetic --commits "$synthetic" --seed 1 --out "$work/synthetic.git" >/dev/null
t1=$(date +%s.%N)
echo "# synthetic repository of $synthetic commits generated in $(python3 -c "print(round($t1 - $t0, 1))") s"

"$bin/github-sim" --port 0 --repos 0 --prs 0 \
  --git-repo "fd=$work/fd.git" --git-repo "synthetic=$work/synthetic.git" >"$work/sim.out" 2>&1 &
sim_pid=$!
for _ in $(seq 1 600); do grep -q "http://" "$work/sim.out" 2>/dev/null && break; sleep 0.1; done
url=$(grep -o 'http://[0-9.:]*' "$work/sim.out" | head -1)
[ -n "$url" ] || { echo "the simulator did not start: $(cat "$work/sim.out")" >&2; exit 1; }
org=$(grep -o 'org[= ][a-z0-9-]*' "$work/sim.out" | head -1 | sed 's/org[= ]//')
org=${org:-acme}

for name in fd synthetic; do
  repo="$work/$name.git"
  commits=$(git --git-dir "$repo" rev-list --count HEAD)
  # git's own: the floor the job is held to.
  s=$(date +%s.%N)
  git --git-dir "$repo" log --numstat -M --diff-merges=first-parent HEAD >/dev/null
  e=$(date +%s.%N)
  git_seconds=$(python3 -c "print($e - $s)")
  read_json=$("$bin/examples/commits_read" "$repo")
  # The job end to end, from the simulator over smart HTTP.
  curl -sf -o /dev/null -X DELETE "$url/_sim/ledger"
  mkdir -p "$work/run-$name"
  GITHUB_API_URL="$url" GITHUB_GIT_URL="$url" GITHUB_TOKEN="bench-token" \
    STORAGE_URL="file://$work/run-$name/lake" WAREHOUSE_URL="sqlite://$work/run-$name/warehouse.db" \
    GIT_CACHE_DIR="$work/run-$name/git" LOG_FORMAT=json RUST_LOG=warn \
    "$bin/ghstats" commits --repos "$org/$name" >"$work/run-$name/result.json" 2>"$work/run-$name/ghstats.log" &
  pid=$! hwm=0 start=$(date +%s.%N)
  while kill -0 "$pid" 2>/dev/null; do
    h=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
    [ -n "$h" ] && [ "$h" -gt "$hwm" ] && hwm=$h
    sleep 0.05
  done
  wait "$pid" || { echo "ghstats commits failed:" >&2; cat "$work/run-$name/ghstats.log" "$work/run-$name/result.json" >&2; exit 1; }
  end=$(date +%s.%N)
  curl -sf "$url/_sim/ledger" >"$work/run-$name/ledger.json"
  python3 - "$name" "$commits" "$git_seconds" "$read_json" "$work/run-$name/result.json" \
    "$work/run-$name/ledger.json" "$hwm" "$start" "$end" <<'PY'
import json, sys
name, commits, git_seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
read = json.loads(sys.argv[4])
res, ledger = json.load(open(sys.argv[5])), json.load(open(sys.argv[6]))
hwm_kb, start, end = int(sys.argv[7]), float(sys.argv[8]), float(sys.argv[9])
assert res["status"] == "completed", res
assert res["commits"] == commits == read["commits"], (res["commits"], commits, read["commits"])
ours = read["commits"] / read["seconds"]
git = commits / git_seconds
print(f"# {name}: {commits} commits, {read['file_changes']} file changes, "
      f"{res['api_cost']['graphql_queries']} GraphQL queries")
for key, value in [
    ("commits", commits),
    ("commits_per_second", round(ours)),
    ("git_numstat_commits_per_second", round(git)),
    ("commits_vs_git_numstat_ratio", round(ours / git, 2)),
    ("commits_job_seconds", round(end - start, 2)),
    ("commits_peak_rss_mb", round(hwm_kb / 1024, 1)),
    ("commits_graphql_points_per_1000", round(ledger["graphql_points"] * 1000 / commits, 1)),
    ("commits_rest_requests", ledger["rest_requests"]),
]:
    print(f"{key}_{name}={value}")
PY
done
