#!/usr/bin/env bash
# Page tests drive Debian's headless Chromium (no browser downloads). Install it when
# missing and we may (root with apt-get); otherwise say how.
set -euo pipefail
for c in chromium chromium-browser; do
  if command -v "$c" >/dev/null 2>&1; then exit 0; fi
done
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing Debian's chromium for the page tests…" >&2
  DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  exit 0
fi
echo "chromium is not installed: install it (e.g. 'sudo apt-get install chromium') for the page tests" >&2
exit 1
