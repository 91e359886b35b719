#!/bin/sh
# Installs Debian's Prometheus (2.42) and its promtool for the tests that run them: the alert rules'
# checks and unit tests (test/unit/prometheus-rules.test.ts), `promtool check metrics` and a real
# Prometheus scraping a running engine (test/integration/prometheus.test.ts). Only the binaries are used:
# the package's own service is not started. Idempotent: does nothing when both answer.
set -eu

if command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1; then
  echo "prometheus already installed: $(prometheus --version 2>&1 | head -1)"
  exit 0
fi

. "$(dirname "$0")/apt-install.sh"
apt_install install-prometheus prometheus
echo "installed: $(prometheus --version 2>&1 | head -1); $(promtool --version 2>&1 | head -1)"
