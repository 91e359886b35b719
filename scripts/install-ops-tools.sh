#!/bin/sh
# Installs the operators' tools that npm test runs against deploy/: Debian's Prometheus (2.42) with
# promtool (test/unit/prometheus-rules.test.ts, test/integration/prometheus.test.ts), and systemd's
# systemd-analyze and systemd-sysusers (test/integration/systemd-unit.test.ts). Only the binaries are used:
# no package's service is started (apt-install.sh). Idempotent: installs only what is missing.
set -eu

missing=""
command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1 || missing="$missing prometheus"
command -v systemd-analyze >/dev/null 2>&1 && command -v systemd-sysusers >/dev/null 2>&1 || missing="$missing systemd"
if [ -z "$missing" ]; then
  echo "installed: $(prometheus --version 2>&1 | head -1); $(systemd-analyze --version | head -1)"
  exit 0
fi

. "$(dirname "$0")/apt-install.sh"
# shellcheck disable=SC2086 # a list of package names
apt_install install-ops-tools $missing
echo "installed: $(prometheus --version 2>&1 | head -1); $(systemd-analyze --version | head -1)"
