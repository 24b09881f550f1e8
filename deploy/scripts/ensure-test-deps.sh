#!/usr/bin/env bash
# Everything the test suite runs for real, installed when missing: Debian's chromium (page
# tests), postgresql (storage tests on PostgreSQL), prometheus + promtool (observability
# tests), kcat (an independent Kafka client), and Apache Kafka's jars from Maven Central.
# Idempotent and quiet when all is there. Needs root with apt-get to install packages.
set -euo pipefail
cd "$(dirname "$0")/../.."

missing=()
have() { command -v "$1" >/dev/null 2>&1; }
have chromium || have chromium-browser || missing+=(chromium)
[ -x "$(ls -d /usr/lib/postgresql/*/bin/pg_ctl 2>/dev/null | sort -V | tail -1)" ] || missing+=(postgresql)
have prometheus && have promtool || missing+=(prometheus)
have kcat || missing+=(kcat)
have java || missing+=(openjdk-17-jre-headless)
have mvn || missing+=(maven)

if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" = "0" ] && have apt-get; then
    echo "installing Debian packages for the tests: ${missing[*]}…" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    # Debian's prometheus package starts a system service where it can; the tests start
    # their own servers on free ports, so none of the packaged daemons is needed.
  else
    echo "missing for the tests: ${missing[*]} (install with apt-get as root)" >&2
    exit 1
  fi
fi

# Kafka's jars (Maven Central), cached under deploy/kafka/libs after the first fetch.
if [ -x deploy/kafka/kafka.sh ]; then
  deploy/kafka/kafka.sh fetch
fi
