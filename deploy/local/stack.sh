#!/usr/bin/env bash
# The whole distributed stack on this machine: Kafka, PostgreSQL, one ingest, N scorers
# and the API, each its own process (what `make up` / `make down` run).
#
#   deploy/local/stack.sh up|down|status
#
# State (PID files, logs, the servers' data) lives under SENTIMON_STACK_DIR
# [.sentimon/stack]. Ports (127.0.0.1): API SENTIMON_PORT [8000], ingest
# SENTIMON_INGEST_PORT [8001], scorers SENTIMON_SCORER_PORT [8002] and up,
# Kafka KAFKA_PORT [9092] / KAFKA_CONTROLLER_PORT [9093], PostgreSQL PG_PORT [5433].
# SCORERS [2] scorer processes; SENTIMON_DEMO [false]: true runs the demo source
# (a week of demo history, ~70,000 mentions, then a live trickle).
# `up` is idempotent: a service already running is left alone.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
cd "$repo"

STACK_DIR="${SENTIMON_STACK_DIR:-$repo/.sentimon/stack}"
SCORERS="${SCORERS:-2}"
API_PORT="${SENTIMON_PORT:-8000}"
INGEST_PORT="${SENTIMON_INGEST_PORT:-8001}"
SCORER_PORT="${SENTIMON_SCORER_PORT:-8002}"
SENTIMON="${SENTIMON:-$repo/.venv/bin/sentimon}"
STOP_TIMEOUT="${STOP_TIMEOUT:-40}"

export KAFKA_DIR="${KAFKA_DIR:-$STACK_DIR/kafka}"
export KAFKA_PORT="${KAFKA_PORT:-9092}"
export PG_DIR="${PG_DIR:-$STACK_DIR/postgres}"
export PG_PORT="${PG_PORT:-5433}"

run_dir="$STACK_DIR/run"
log_dir="$STACK_DIR/logs"

say() { echo "stack: $*" >&2; }

alive() { # name → 0 if its PID file names a live process
  local f="$run_dir/$1.pid"
  [ -f "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null
}

services() {
  echo api ingest
  for i in $(seq 1 "$SCORERS"); do echo "scorer-$i"; done
}

start_service() { # name port-env port command…
  local name=$1 port_env=$2 port=$3
  shift 3
  if alive "$name"; then
    say "$name already running (pid $(cat "$run_dir/$name.pid"))"
    return 0
  fi
  # setsid: its own process group, so a Ctrl-C in this shell does not reach it.
  env "$port_env=$port" setsid "$@" >>"$log_dir/$name.log" 2>&1 </dev/null &
  echo $! >"$run_dir/$name.pid"
}

wait_ready() { # name url
  local name=$1 url=$2 deadline=$((SECONDS + 90))
  until curl -fs -o /dev/null "$url" 2>/dev/null; do
    if ! alive "$name"; then
      say "$name exited; last lines of $log_dir/$name.log:"
      tail -20 "$log_dir/$name.log" >&2
      return 1
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      say "$name not ready at $url after 90 s; see $log_dir/$name.log"
      return 1
    fi
    sleep 0.5
  done
}

up() {
  mkdir -p "$run_dir" "$log_dir" "$STACK_DIR/data"
  deploy/kafka/kafka.sh start
  deploy/postgres/pg.sh start
  SENTIMON_DATABASE_URL="$(deploy/postgres/pg.sh url)"
  export SENTIMON_DATABASE_URL
  export SENTIMON_KAFKA_BOOTSTRAP="127.0.0.1:$KAFKA_PORT"
  export SENTIMON_DATA_DIR="$STACK_DIR/data"
  export SENTIMON_DEMO="${SENTIMON_DEMO:-false}"
  # The prestart step: wait for the database, then migrate.
  "$SENTIMON" migrate --wait 60
  local key_file="$STACK_DIR/admin-key"
  if [ ! -s "$key_file" ]; then
    (umask 077 && "$SENTIMON" keys create --role admin --name "make up" 2>/dev/null >"$key_file")
  fi
  start_service api SENTIMON_PORT "$API_PORT" "$SENTIMON" api
  start_service ingest SENTIMON_INGEST_PORT "$INGEST_PORT" "$SENTIMON" ingest
  for i in $(seq 1 "$SCORERS"); do
    start_service "scorer-$i" SENTIMON_SCORER_PORT "$((SCORER_PORT + i - 1))" "$SENTIMON" scorer
  done
  wait_ready api "http://127.0.0.1:$API_PORT/readyz"
  wait_ready ingest "http://127.0.0.1:$INGEST_PORT/readyz"
  for i in $(seq 1 "$SCORERS"); do
    wait_ready "scorer-$i" "http://127.0.0.1:$((SCORER_PORT + i - 1))/readyz"
  done
  local base="http://127.0.0.1:$API_PORT"
  echo
  echo "Sentimon (distributed) is running at $base  (API docs: $base/docs)"
  echo "  push mentions: POST http://127.0.0.1:$INGEST_PORT/api/v1/mentions"
  echo "  admin API key: $(cat "$key_file")   (in $key_file)"
  echo "  dashboard:     $base/login#key=$(cat "$key_file")"
  echo "  logs:          $log_dir/   stop with: make down"
}

stop_service() {
  local name=$1 f="$run_dir/$1.pid"
  if ! alive "$name"; then
    rm -f "$f"
    return 0
  fi
  local pid deadline=$((SECONDS + STOP_TIMEOUT))
  pid="$(cat "$f")"
  kill -TERM "$pid"
  while kill -0 "$pid" 2>/dev/null; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      say "$name did not stop within $STOP_TIMEOUT s: SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      break
    fi
    sleep 0.2
  done
  rm -f "$f"
  say "$name stopped"
}

down() {
  # Producers first, then consumers (they drain what is in flight), then the API.
  stop_service ingest
  for f in "$run_dir"/scorer-*.pid; do
    [ -e "$f" ] || continue
    stop_service "$(basename "$f" .pid)"
  done
  stop_service api
  deploy/postgres/pg.sh stop
  deploy/kafka/kafka.sh stop
}

status() {
  local rc=0
  for name in $(services); do
    if alive "$name"; then echo "$name: running (pid $(cat "$run_dir/$name.pid"))"
    else echo "$name: stopped"; rc=3; fi
  done
  deploy/kafka/kafka.sh status || rc=3
  deploy/postgres/pg.sh status || rc=3
  return "$rc"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  *)
    echo "usage: $0 up|down|status" >&2
    exit 2
    ;;
esac
