#!/usr/bin/env bash
# A private PostgreSQL with TLS for the TLS tests, apart from the shared one scripts/services.sh
# runs. `start DIR CERT KEY` makes a cluster in DIR (which must not exist), serving only TLS
# connections on a free 127.0.0.1 port with CERT/KEY (PEM), and prints the port; `stop DIR`
# stops it and removes DIR. Exit 3: no PostgreSQL binaries (/usr/lib/postgresql/*/bin).
set -euo pipefail
log() { echo "pg-tls: $*" >&2; }

initdb=$(ls /usr/lib/postgresql/*/bin/initdb 2>/dev/null | sort -V | tail -1 || true)
if [ -z "$initdb" ]; then
  log "no PostgreSQL binaries under /usr/lib/postgresql/*/bin"
  exit 3
fi
pg_bin=$(dirname "$initdb")
# PostgreSQL refuses to run as root: the same unprivileged user as scripts/services.sh.
pg_user=$(id -un)
if [ "$(id -u)" -eq 0 ]; then pg_user=$(id -un postgres 2>/dev/null || echo nobody); fi
as_pg() { if [ "$(id -un)" = "$pg_user" ]; then "$@"; else runuser -u "$pg_user" -- "$@"; fi; }

case "${1:-}" in
start)
  dir=$2 cert=$3 key=$4
  mkdir -p "$dir"
  data="$dir/data"
  cp "$cert" "$dir/server.crt"
  cp "$key" "$dir/server.key"
  chown -R "$pg_user" "$dir"
  chmod 700 "$dir"
  chmod 600 "$dir/server.key"
  as_pg "$pg_bin/initdb" -D "$data" -U postgres --auth=trust -E UTF8 >"$dir/init.log" 2>&1 \
    || { log "initdb failed: $(tail -3 "$dir/init.log")"; exit 1; }
  # Like a managed service: TLS or nothing.
  cat >"$data/pg_hba.conf" <<HBA
local all all trust
hostssl all all 127.0.0.1/32 trust
hostnossl all all 127.0.0.1/32 reject
HBA
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
  as_pg "$pg_bin/pg_ctl" -D "$data" -l "$dir/server.log" -w \
    -o "-k $dir -h 127.0.0.1 -p $port -c fsync=off -c ssl=on -c ssl_cert_file=$dir/server.crt -c ssl_key_file=$dir/server.key" \
    start >/dev/null || { log "PostgreSQL did not start: $(tail -5 "$dir/server.log")"; exit 1; }
  echo "$port"
  ;;
stop)
  dir=$2
  if [ -f "$dir/data/postmaster.pid" ]; then
    as_pg "$pg_bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
  fi
  rm -rf "$dir"
  ;;
*)
  echo "usage: $0 start DIR CERT KEY | stop DIR" >&2
  exit 2
  ;;
esac
