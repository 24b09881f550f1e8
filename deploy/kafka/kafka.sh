#!/usr/bin/env bash
# A single-node Apache Kafka 3.9.1 broker (KRaft, no ZooKeeper) from Maven Central's jars.
#
#   kafka.sh fetch    copy the broker's jars into $KAFKA_LIBS (once; quiet when cached)
#   kafka.sh start    format the data dir if new, start the broker, return once it answers
#                     a metadata request (already running: says so, exits 0)
#   kafka.sh stop     SIGTERM (a clean shutdown), SIGKILL after $KAFKA_STOP_TIMEOUT s
#                     (not running: exits 0)
#   kafka.sh kill     SIGKILL at once: a crash, for tests (not running: exits 0)
#   kafka.sh status   "running …" and exit 0, or "stopped" and exit 3
#
# Environment (defaults in brackets); tests run their own broker with their own values:
#   KAFKA_DIR              data, logs, pid file, rendered config [<repo>/.sentimon/kafka]
#   KAFKA_HOST             listen address [127.0.0.1]
#   KAFKA_PORT             client (PLAINTEXT) port [9092]
#   KAFKA_CONTROLLER_PORT  KRaft controller port [9093]
#   KAFKA_LIBS             jar cache [deploy/kafka/libs]
#   KAFKA_HEAP_OPTS        [-Xms128m -Xmx512m]
#   KAFKA_JVM_OPTS         extra JVM flags [none]
#   KAFKA_START_TIMEOUT    seconds to wait for readiness [90]
#   KAFKA_STOP_TIMEOUT     seconds to wait for a clean shutdown [30]
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"

KAFKA_DIR="${KAFKA_DIR:-$repo/.sentimon/kafka}"
KAFKA_HOST="${KAFKA_HOST:-127.0.0.1}"
KAFKA_PORT="${KAFKA_PORT:-9092}"
KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-9093}"
KAFKA_LIBS="${KAFKA_LIBS:-$here/libs}"
KAFKA_HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xms128m -Xmx512m}"
KAFKA_JVM_OPTS="${KAFKA_JVM_OPTS:-}"
KAFKA_START_TIMEOUT="${KAFKA_START_TIMEOUT:-90}"
KAFKA_STOP_TIMEOUT="${KAFKA_STOP_TIMEOUT:-30}"

pid_file="$KAFKA_DIR/kafka.pid"
data_dir="$KAFKA_DIR/data"
logs_dir="$KAFKA_DIR/logs"
config="$KAFKA_DIR/server.properties"
stamp="$KAFKA_LIBS/.fetched"

say() { echo "kafka: $*" >&2; }
die() { say "$*"; exit 1; }

pom_digest() { sha256sum "$here/pom.xml" | cut -d' ' -f1; }

fetch() {
  # The stamp holds the pom's digest: a changed pom fetches again, an unchanged one is a no-op.
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$(pom_digest)" ]; then
    return 0
  fi
  command -v mvn >/dev/null 2>&1 || die "Maven (mvn) is needed to fetch the broker's jars"
  say "fetching Apache Kafka's jars from Maven Central into $KAFKA_LIBS…"
  local tmp="$KAFKA_LIBS.tmp.$$"
  rm -rf "$tmp"
  mvn -q -B -Dstyle.color=never -f "$here/pom.xml" dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$tmp" >&2 || { rm -rf "$tmp"; die "fetch failed"; }
  rm -rf "$KAFKA_LIBS"
  mv "$tmp" "$KAFKA_LIBS"
  pom_digest >"$stamp"
}

# The broker's pid if it is running: the pid file names a live JVM running kafka.Kafka with
# this data dir's config (so a recycled pid is never taken for the broker).
running_pid() {
  [ -f "$pid_file" ] || return 1
  local pid
  pid="$(cat "$pid_file")"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  [ -r "/proc/$pid/cmdline" ] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "kafka.Kafka $config" || return 1
  echo "$pid"
}

# One Metadata (v1) request over the wire with Python's standard library: ready once the
# broker answers it and lists itself.
metadata_ok() {
  python3 - "$KAFKA_HOST" "$KAFKA_PORT" <<'PY'
import socket, struct, sys
host, port = sys.argv[1], int(sys.argv[2])
client = b"kafka.sh"
# api_key=3 (Metadata), api_version=1, correlation_id=1, client_id; topics=null (all).
body = struct.pack(">hhih", 3, 1, 1, len(client)) + client + struct.pack(">i", -1)
try:
    with socket.create_connection((host, port), timeout=2) as s:
        s.settimeout(5)
        s.sendall(struct.pack(">i", len(body)) + body)
        head = b""
        while len(head) < 4:
            chunk = s.recv(4 - len(head))
            if not chunk:
                sys.exit(1)
            head += chunk
        (size,) = struct.unpack(">i", head)
        data = b""
        while len(data) < size:
            chunk = s.recv(size - len(data))
            if not chunk:
                sys.exit(1)
            data += chunk
except OSError:
    sys.exit(1)
correlation_id, brokers = struct.unpack(">ii", data[:8])
sys.exit(0 if correlation_id == 1 and brokers >= 1 else 1)
PY
}

render_config() {
  sed -e "s|@HOST@|$KAFKA_HOST|g" -e "s|@PORT@|$KAFKA_PORT|g" \
    -e "s|@CONTROLLER_PORT@|$KAFKA_CONTROLLER_PORT|g" -e "s|@DATA_DIR@|$data_dir|g" \
    "$here/server.properties.template" >"$config"
}

java_cmd() {
  local opts
  # The *_OPTS variables hold several flags, split on spaces.
  read -r -a opts <<<"$KAFKA_HEAP_OPTS $KAFKA_JVM_OPTS"
  java_args=(java "${opts[@]}" -Djava.awt.headless=true
    -Dkafka.logs.dir="$logs_dir" -Dlog4j.configuration="file:$here/log4j.properties"
    -cp "$KAFKA_LIBS/*" "$@")
}

start() {
  local pid
  if pid="$(running_pid)"; then
    say "already running (pid $pid) on $KAFKA_HOST:$KAFKA_PORT"
    return 0
  fi
  fetch
  command -v java >/dev/null 2>&1 || die "Java 17 is needed to run the broker"
  mkdir -p "$data_dir" "$logs_dir"
  render_config
  if [ ! -f "$data_dir/meta.properties" ]; then
    local cluster_id
    java_cmd kafka.tools.StorageTool random-uuid
    cluster_id="$("${java_args[@]}")"
    java_cmd kafka.tools.StorageTool format -t "$cluster_id" -c "$config" --ignore-formatted
    "${java_args[@]}" >"$logs_dir/format.log" 2>&1 || { cat "$logs_dir/format.log" >&2; die "format failed"; }
  fi
  # setsid: the broker outlives the shell (and the terminal) that started it.
  java_cmd kafka.Kafka "$config"
  setsid "${java_args[@]}" >>"$logs_dir/stdout.log" 2>&1 </dev/null &
  pid=$!
  echo "$pid" >"$pid_file"
  local deadline=$((SECONDS + KAFKA_START_TIMEOUT))
  until metadata_ok; do
    if ! kill -0 "$pid" 2>/dev/null; then
      rm -f "$pid_file"
      tail -n 30 "$logs_dir/stdout.log" "$logs_dir/server.log" >&2 2>/dev/null || true
      die "the broker exited during startup (logs in $logs_dir)"
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      die "the broker did not answer on $KAFKA_HOST:$KAFKA_PORT within ${KAFKA_START_TIMEOUT}s (logs in $logs_dir)"
    fi
    sleep 0.2
  done
  say "running (pid $pid) on $KAFKA_HOST:$KAFKA_PORT, data in $KAFKA_DIR"
}

# Alive and not a zombie (an exited broker whose parent has not reaped it yet).
alive() {
  local state
  state="$(sed -e 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)" || return 1
  [ -n "$state" ] && [ "$state" != "Z" ]
}

stop() {
  local signal="${1:-TERM}" pid
  if ! pid="$(running_pid)"; then
    rm -f "$pid_file"
    say "not running"
    return 0
  fi
  kill "-$signal" "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + KAFKA_STOP_TIMEOUT))
  while alive "$pid"; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      [ "$signal" = "KILL" ] && die "pid $pid survived SIGKILL"
      say "no clean shutdown within ${KAFKA_STOP_TIMEOUT}s: SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      deadline=$((SECONDS + 10))
      signal=KILL
    fi
    sleep 0.1
  done
  rm -f "$pid_file"
  say "stopped (pid $pid, SIG$signal)"
}

status() {
  local pid
  if pid="$(running_pid)"; then
    echo "running (pid $pid) on $KAFKA_HOST:$KAFKA_PORT, data in $KAFKA_DIR"
    return 0
  fi
  echo "stopped"
  return 3
}

case "${1:-}" in
  fetch) fetch ;;
  start) start ;;
  stop) stop TERM ;;
  kill) stop KILL ;;
  status) status ;;
  *)
    echo "usage: $0 fetch|start|stop|kill|status" >&2
    exit 2
    ;;
esac
