#!/usr/bin/env bash
# The whole distributed stack on this machine: Kafka, PostgreSQL, one ingest, N scorers
# and the API, each its own process (what `make up` / `make status` / `make down` run).
#
#   deploy/local/stack.sh up|down|status
#
# The Sentimon processes run under supervisord (pip `supervisor`, installed with
# Sentimon), as compose and Kubernetes run the containers: a process that exits is
# started again (one that dies within SUPERVISOR_STARTSECS [5] of its start is retried
# after 1, 2, 3 … s, SUPERVISOR_STARTRETRIES [10] times, then marked FATAL), `status`
# lists each with its state, pid and uptime (exit 0 when all run, 3 otherwise), `down`
# stops them with SIGTERM (each drains and commits), SIGKILL after STOP_TIMEOUT [40] s.
# By hand: .venv/bin/supervisorctl -c "$SENTIMON_STACK_DIR/supervisord.conf" status|restart scorer-1|tail -f api
#
# State (supervisord's socket and PID file, logs, the servers' data) lives under
# SENTIMON_STACK_DIR [.sentimon/stack]. Ports (127.0.0.1): API SENTIMON_PORT [8000], ingest
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
SUPERVISOR_BIN="${SUPERVISOR_BIN:-$(dirname "$SENTIMON")}"
STOP_TIMEOUT="${STOP_TIMEOUT:-40}"
SUPERVISOR_STARTSECS="${SUPERVISOR_STARTSECS:-5}"
SUPERVISOR_STARTRETRIES="${SUPERVISOR_STARTRETRIES:-10}"

export KAFKA_DIR="${KAFKA_DIR:-$STACK_DIR/kafka}"
export KAFKA_PORT="${KAFKA_PORT:-9092}"
export PG_DIR="${PG_DIR:-$STACK_DIR/postgres}"
export PG_PORT="${PG_PORT:-5433}"

run_dir="$STACK_DIR/run"
log_dir="$STACK_DIR/logs"
conf="$STACK_DIR/supervisord.conf"

say() { echo "stack: $*" >&2; }

ctl() { "$SUPERVISOR_BIN/supervisorctl" -c "$conf" "$@"; }

supervising() { # supervisord of this stack answers
  [ -f "$conf" ] && ctl pid >/dev/null 2>&1
}

esc() { printf '%s' "${1//%/%%}"; } # supervisor expands %(name)s in its config

program() { # name port-env port args…
  local name=$1 port_env=$2 port=$3
  shift 3
  cat <<CONF

[program:$name]
command=$(esc "$SENTIMON") $*
environment=$port_env="$port"
directory=$(esc "$repo")
autostart=true
autorestart=true
startsecs=$SUPERVISOR_STARTSECS
startretries=$SUPERVISOR_STARTRETRIES
stopsignal=TERM
stopwaitsecs=$STOP_TIMEOUT
stopasgroup=true
killasgroup=true
redirect_stderr=true
stdout_logfile=$(esc "$log_dir/$name.log")
stdout_logfile_maxbytes=50MB
stdout_logfile_backups=3
CONF
}

write_conf() {
  local scorers=()
  {
    cat <<CONF
; Written by deploy/local/stack.sh at each \`up\`: edit the script, not this file.
[unix_http_server]
file=$(esc "$run_dir/supervisor.sock")
chmod=0700

[supervisord]
logfile=$(esc "$log_dir/supervisord.log")
pidfile=$(esc "$run_dir/supervisord.pid")
childlogdir=$(esc "$log_dir")
directory=$(esc "$repo")

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[supervisorctl]
serverurl=unix://$(esc "$run_dir/supervisor.sock")
CONF
    program api SENTIMON_PORT "$API_PORT" api
    program ingest SENTIMON_INGEST_PORT "$INGEST_PORT" ingest
    for i in $(seq 1 "$SCORERS"); do
      program "scorer-$i" SENTIMON_SCORER_PORT "$((SCORER_PORT + i - 1))" scorer
      scorers+=("scorer-$i")
    done
    printf '\n[group:scorers]\nprograms=%s\n' "$(IFS=,; echo "${scorers[*]}")"
  } >"$conf.new"
  mv "$conf.new" "$conf"
}

wait_ready() { # name url
  local name=$1 url=$2 deadline=$((SECONDS + 90)) state
  until curl -fs -o /dev/null "$url" 2>/dev/null; do
    state="$(ctl status "$name" 2>/dev/null | awk '{print $2}')" || true
    if [ "$state" = FATAL ]; then
      say "$name keeps exiting (FATAL); last lines of $log_dir/$name.log:"
      tail -20 "$log_dir/$name.log" >&2
      return 1
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      say "$name not ready at $url after 90 s ($state); see $log_dir/$name.log"
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
  write_conf
  if supervising; then
    # Already up: start what is missing (SCORERS may have grown), leave the rest alone.
    ctl update >/dev/null
    ctl start all >/dev/null || true
  else
    # The processes inherit this environment (the SENTIMON_* variables above).
    "$SUPERVISOR_BIN/supervisord" -c "$conf"
    local deadline=$((SECONDS + 30))
    until supervising; do
      if [ "$SECONDS" -ge "$deadline" ]; then
        say "supervisord did not answer within 30 s; see $log_dir/supervisord.log"
        return 1
      fi
      sleep 0.2
    done
  fi
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
  echo "  logs:          $log_dir/   status: make status   stop with: make down"
}

down() {
  if supervising; then
    # Producers first, then consumers (they drain what is in flight), then the API.
    ctl stop ingest || true
    ctl stop 'scorers:*' || true
    ctl stop api || true
    ctl shutdown >/dev/null || true
    local pid_file="$run_dir/supervisord.pid" deadline=$((SECONDS + STOP_TIMEOUT))
    while [ -f "$pid_file" ] && kill -0 "$(cat "$pid_file")" 2>/dev/null; do
      if [ "$SECONDS" -ge "$deadline" ]; then
        say "supervisord did not exit within $STOP_TIMEOUT s"
        break
      fi
      sleep 0.2
    done
    say "sentimon processes stopped"
  fi
  deploy/postgres/pg.sh stop
  deploy/kafka/kafka.sh stop
}

status() {
  local rc=0
  if supervising; then
    ctl status || rc=3
  else
    echo "supervisord: not running (make up starts it)"
    rc=3
  fi
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
