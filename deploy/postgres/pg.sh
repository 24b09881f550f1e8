#!/usr/bin/env bash
# A PostgreSQL cluster on 127.0.0.1 for local use and tests, from Debian's packages.
#
#   deploy/postgres/pg.sh start|stop|status|url
#
# Settings (environment):
#   PG_DIR      state directory (data/, pg.log)        [default: .sentimon/postgres]
#   PG_PORT     TCP port on 127.0.0.1                  [default: 5433]
#   PG_DB       database created for Sentimon          [default: sentimon]
#   PG_PASSWORD password of the "sentimon" role        [default: sentimon]
#   PG_BIN      PostgreSQL's bin directory             [default: newest /usr/lib/postgresql/*/bin]
#   PG_RUN_AS   system user running the server as root [default: postgres]
#   PG_OPTS     extra server options, e.g. "-c fsync=off" (tests)
#   PG_STOP_MODE  pg_ctl stop mode: fast (default) or immediate
#
# Idempotent: start on a running cluster and stop on a stopped one do nothing. The data
# directory is created (initdb) on the first start and kept. Passwords are required
# (scram-sha-256) even on 127.0.0.1; the server listens on no other address and on no
# Unix socket. As root the server runs as PG_RUN_AS, which owns the state directory.
set -euo pipefail

PG_DIR=${PG_DIR:-.sentimon/postgres}
PG_PORT=${PG_PORT:-5433}
PG_DB=${PG_DB:-sentimon}
PG_PASSWORD=${PG_PASSWORD:-sentimon}
PG_RUN_AS=${PG_RUN_AS:-postgres}
PG_OPTS=${PG_OPTS:-}
PG_STOP_MODE=${PG_STOP_MODE:-fast}
PG_USER=sentimon

if [ -z "${PG_BIN:-}" ]; then
  PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
fi
if [ -z "${PG_BIN:-}" ] || [ ! -x "$PG_BIN/pg_ctl" ]; then
  echo "pg.sh: PostgreSQL not found (set PG_BIN, or apt-get install postgresql)" >&2
  exit 2
fi

mkdir -p "$PG_DIR"
PG_DIR=$(cd "$PG_DIR" && pwd)
DATA="$PG_DIR/data"
LOG="$PG_DIR/pg.log"

# Runs a PostgreSQL tool as the cluster's owner (PostgreSQL refuses to run as root).
as_owner() {
  if [ "$(id -u)" = "0" ]; then
    if ! id -u "$PG_RUN_AS" >/dev/null 2>&1; then
      echo "pg.sh: running as root needs the system user '$PG_RUN_AS' (set PG_RUN_AS)" >&2
      exit 2
    fi
    runuser -u "$PG_RUN_AS" -- "$@"
  else
    "$@"
  fi
}

url() {
  echo "postgresql+psycopg://$PG_USER:$PG_PASSWORD@127.0.0.1:$PG_PORT/$PG_DB"
}

running() {
  [ -f "$DATA/PG_VERSION" ] && as_owner "$PG_BIN/pg_ctl" status -D "$DATA" >/dev/null 2>&1
}

init() {
  [ -f "$DATA/PG_VERSION" ] && return 0
  if [ "$(id -u)" = "0" ]; then
    chown "$PG_RUN_AS" "$PG_DIR"
    chmod 700 "$PG_DIR"
  fi
  if ! as_owner test -w "$PG_DIR"; then
    echo "pg.sh: $PG_DIR is not writable by the server's user (a parent directory closed to it?)" >&2
    exit 2
  fi
  local pwfile
  pwfile=$(mktemp "$PG_DIR/.pw.XXXXXX")
  printf '%s\n' "$PG_PASSWORD" >"$pwfile"
  [ "$(id -u)" = "0" ] && chown "$PG_RUN_AS" "$pwfile"
  # The superuser is "sentimon" with a password; no trust authentication anywhere.
  if ! as_owner "$PG_BIN/initdb" -D "$DATA" -U "$PG_USER" --pwfile="$pwfile" \
      --auth=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8 >"$PG_DIR/initdb.log" 2>&1; then
    rm -f "$pwfile"
    echo "pg.sh: initdb failed:" >&2
    cat "$PG_DIR/initdb.log" >&2
    exit 1
  fi
  rm -f "$pwfile"
}

start() {
  if running; then
    echo "PostgreSQL already running: $(url)"
    return 0
  fi
  init
  [ "$(id -u)" = "0" ] && { touch "$LOG"; chown "$PG_RUN_AS" "$LOG"; }
  # -w waits until the server accepts connections (pg_ctl's own bounded wait, 60 s).
  if ! as_owner "$PG_BIN/pg_ctl" start -D "$DATA" -l "$LOG" -w -t 60 \
      -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -c unix_socket_directories='' $PG_OPTS" \
      >/dev/null; then
    echo "pg.sh: PostgreSQL did not start; last lines of $LOG:" >&2
    tail -20 "$LOG" >&2
    exit 1
  fi
  local exists
  exists=$(PGPASSWORD=$PG_PASSWORD "$PG_BIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U "$PG_USER" \
    -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$PG_DB'")
  if [ "$exists" != "1" ]; then
    PGPASSWORD=$PG_PASSWORD "$PG_BIN/createdb" -h 127.0.0.1 -p "$PG_PORT" -U "$PG_USER" "$PG_DB"
  fi
  echo "PostgreSQL running: $(url)  (data $DATA, log $LOG)"
}

stop() {
  if ! running; then
    echo "PostgreSQL not running"
    return 0
  fi
  as_owner "$PG_BIN/pg_ctl" stop -D "$DATA" -m "$PG_STOP_MODE" -w -t 60 >/dev/null
  echo "PostgreSQL stopped"
}

status() {
  if running; then
    echo "PostgreSQL running: $(url)"
  else
    echo "PostgreSQL not running"
    return 3
  fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  url) url ;;
  *)
    echo "usage: $0 start|stop|status|url" >&2
    exit 2
    ;;
esac
