#!/usr/bin/env bash
# Private PostgreSQL cluster for junheng: start | stop | url.
#
#   deploy/scripts/pg.sh start DIR [--ephemeral|--temp]   start (initialising if needed) a cluster in DIR,
#                                                  print its admin DATABASE_URL on stdout
#   deploy/scripts/pg.sh stop DIR                  stop it (and remove DIR if it was ephemeral)
#   deploy/scripts/pg.sh roles ADMIN_URL [DB]      create (once) the schema owner `junheng`, the
#                                                  runtime role `junheng_app` and database DB
#                                                  (default junheng) owned by the owner; print
#                                                  the owner's URL, then the runtime role's
#
# The services run as the runtime role and migrate as the owner (JUNHENG_MIGRATE_DATABASE_URL);
# the migration grants the runtime role only INSERT and SELECT on the audit log.
#
# Installs the Debian `postgresql` package when the binaries are missing and we are root.
# initdb and pg_ctl refuse to run as root, so as root they run as the `postgres` user.
set -euo pipefail

cmd=${1:?usage: pg.sh start|stop DIR [--ephemeral]}
dir=${2:?usage: pg.sh start|stop DIR [--ephemeral]}
mode=${3:-}

find_bin() {
  local d
  for d in /usr/lib/postgresql/*/bin; do
    [ -x "$d/initdb" ] && { echo "$d"; return 0; }
  done
  command -v initdb >/dev/null 2>&1 && { dirname "$(command -v initdb)"; return 0; }
  return 1
}

bin=$(find_bin || true)
if [ -z "$bin" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "pg.sh: installing PostgreSQL (apt-get install postgresql)…" >&2
    apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
    bin=$(find_bin)
  else
    echo "pg.sh: PostgreSQL binaries not found; install the 'postgresql' package or set DATABASE_URL" >&2
    exit 1
  fi
fi

as_owner() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

case "$cmd" in
start)
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  # The socket path must be short (~107 bytes) and reachable by the postgres user.
  sock=$(mktemp -d /tmp/jh-pg.XXXXXX)
  if [ "$(id -u)" = 0 ]; then chown postgres "$dir" "$sock"; chmod 755 "$dir"; fi
  if [ ! -f "$dir/data/PG_VERSION" ]; then
    as_owner "$bin/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 --no-sync >"$dir/initdb.log" 2>&1 \
      || { cat "$dir/initdb.log" >&2; exit 1; }
  fi
  port=$(free_port)
  opts="-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$sock -c max_connections=200"
  case "$mode" in
    --ephemeral)  # tests: fast and thrown away
      opts="$opts -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
      touch "$dir/.ephemeral" ;;
    --temp)       # benchmarks: durable settings, thrown away
      touch "$dir/.ephemeral" ;;
  esac
  as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -o "$opts" start >/dev/null \
    || { cat "$dir/server.log" >&2; exit 1; }
  echo "$sock" >"$dir/.socket"
  echo "postgres://postgres@127.0.0.1:$port/postgres"
  ;;
roles)
  admin=$dir
  db=${3:-junheng}
  psql -qAt -v ON_ERROR_STOP=1 "$admin" >/dev/null <<SQL
SELECT 'CREATE ROLE junheng LOGIN' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'junheng') \gexec
SELECT 'CREATE ROLE junheng_app LOGIN NOINHERIT' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'junheng_app') \gexec
SELECT 'CREATE DATABASE $db OWNER junheng' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '$db') \gexec
SQL
  for role in junheng junheng_app; do
    echo "$admin" | sed -E "s#^(postgres(ql)?://)([^@/]*@)?([^/]*)/[^?]*#\1$role@\4/$db#"
  done
  ;;
stop)
  [ -d "$dir/data" ] || exit 0
  as_owner "$bin/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
  [ -f "$dir/.socket" ] && rm -rf "$(cat "$dir/.socket")"
  [ -f "$dir/.ephemeral" ] && rm -rf "$dir"
  ;;
*)
  echo "usage: pg.sh start|stop DIR [--ephemeral] | roles ADMIN_URL [DB]" >&2; exit 2 ;;
esac
