#!/bin/sh
# Installs Debian's Chromium for the browser tests (npm run test:e2e). playwright-core drives it at
# /usr/bin/chromium; Playwright's own browser download is not used (it does not work on our machines).
# Also Liberation Sans (fonts-liberation), metric-compatible with Helvetica and Arial: the draw.io file
# names Helvetica, as every desktop has it, and without it Chromium sets the text in the wider DejaVu Sans.
# Idempotent: does nothing when Chromium starts and the font is there.
set -eu

if [ -x /usr/bin/chromium ] && /usr/bin/chromium --version >/dev/null 2>&1 && [ -e /usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf ]; then
  echo "chromium already installed: $(/usr/bin/chromium --version 2>/dev/null); Liberation Sans present"
  exit 0
fi

. "$(dirname "$0")/apt-install.sh"
apt_install install-chromium chromium fonts-liberation
echo "installed: $(/usr/bin/chromium --version 2>/dev/null), $(fc-match Helvetica 2>/dev/null)"
