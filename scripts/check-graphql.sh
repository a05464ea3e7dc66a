#!/usr/bin/env bash
# Validates every query in graphql/ with ../shared/tools/graphql/validate-graphql.mjs
# (0 errors, deprecated fields are errors). The validator's dependencies are installed with
# `npm ci` in a copy under ~/.cache, so the shared folder stays untouched.
set -euo pipefail
cd "$(dirname "$0")/.."
tools="../shared/tools/graphql"
if [ ! -f "$tools/validate-graphql.mjs" ]; then
  if [ "${CI:-}" = "true" ]; then
    echo "error: $tools/validate-graphql.mjs is missing; CI needs ../shared beside the clone" >&2
    exit 1
  fi
  echo "skipped: $tools not found (the GraphQL schema check needs ../shared beside the clone)"
  exit 0
fi
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "error: node and npm are needed for the GraphQL schema check" >&2
  exit 1
fi
cache="$HOME/.cache/ghstats-graphql"
mkdir -p "$cache"
if ! cmp -s "$tools/package-lock.json" "$cache/package-lock.json" || [ ! -d "$cache/node_modules" ]; then
  cp "$tools/package.json" "$tools/package-lock.json" "$cache/"
  (cd "$cache" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi
cp "$tools/validate-graphql.mjs" "$cache/"
node "$cache/validate-graphql.mjs" --deprecated-error --quiet graphql/*.graphql
echo "graphql: $(ls graphql/*.graphql | wc -l) queries valid, no deprecated fields"
