#!/usr/bin/env bash
# The test command: format check, clippy with -D warnings, the GraphQL schema check of
# graphql/*.graphql against GitHub's published schema, the deployment checks, and every test of the workspace with the
# servers they need (moto, fake-gcs-server, PostgreSQL) started on 127.0.0.1 by
# scripts/services.sh and stopped at the end. GHSTATS_NO_SERVICES=1 runs without them: those
# tests then say they are skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/ghstats-target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy --all-targets -- -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "== GraphQL queries against GitHub's schema"
scripts/check-graphql.sh

# The deployment files (terraform/, Dockerfile, cloudbuild.yaml): terraform fmt and validate
# against the google provider's schema, argument names, checkov, hadolint, the Cloud Build
# schema and yamllint, offline, when the shared checks are beside the project.
if [ -x ../shared/tools/iac/check-iac.sh ]; then
  echo "== deployment checks (../shared/tools/iac/check-iac.sh)"
  bash ../shared/tools/iac/check-iac.sh
else
  echo "== deployment checks skipped: ../shared/tools/iac/check-iac.sh is not beside the project"
fi

if [ "${GHSTATS_NO_SERVICES:-}" != "1" ]; then
  echo "== starting test servers"
  trap 'bash scripts/services.sh stop' EXIT
  services_env=$(bash scripts/services.sh start)
  eval "$services_env"
fi

echo "== cargo test"
cargo test --workspace --locked 2>&1 | tee "${CARGO_TARGET_DIR}/test.log"
# One closing line over every test binary.
awk '/^test result:/ { p += $4; f += $6; i += $8 } END { printf "%d passed, %d failed, %d skipped\n", p, f, i }' "${CARGO_TARGET_DIR}/test.log"
