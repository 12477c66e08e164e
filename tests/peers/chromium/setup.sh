#!/bin/sh
# Idempotent: Debian's chromium (apt, ~1 min the first time) and playwright-core
# from package-lock.json (npm ci, ~1 s). Run as root for apt.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
if ! [ -x "${CHROMIUM:-/usr/bin/chromium}" ]; then
  apt-get install -y chromium >&2
fi
if ! [ -f "$here/node_modules/playwright-core/package.json" ] \
   || ! grep -q '"version": "1.65.1"' "$here/node_modules/playwright-core/package.json"; then
  (cd "$here" && npm ci --no-audit --no-fund >&2)
fi
echo "chromium: ok ($("${CHROMIUM:-/usr/bin/chromium}" --version 2>/dev/null | tail -1))" >&2
