#!/bin/sh
# Installs Debian's Chromium for the dashboard's browser test (npm run test:e2e). playwright-core drives
# it at /usr/bin/chromium; Playwright's own browser download is not used (it does not work on our
# machines). Idempotent: does nothing when Chromium is already there and starts.
set -eu

if [ -x /usr/bin/chromium ] && /usr/bin/chromium --version >/dev/null 2>&1; then
  echo "chromium already installed: $(/usr/bin/chromium --version 2>/dev/null)"
  exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
  SUDO=""
elif command -v sudo >/dev/null 2>&1; then
  SUDO="sudo"
else
  echo "install-chromium: need root (or sudo) to run apt-get install chromium" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update
$SUDO apt-get install -y --no-install-recommends chromium
echo "installed: $(/usr/bin/chromium --version 2>/dev/null)"
