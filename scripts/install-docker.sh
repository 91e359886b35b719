#!/usr/bin/env bash
# Makes a Docker engine and Docker Compose v2 answer, for `npm run test:compose`, idempotently:
#   - a running engine is used as it is;
#   - otherwise Debian's engine (docker.io) is installed if missing and dockerd started in the
#     background (these machines have no systemd), with its log in /var/log/ecomstream-dockerd.log;
#   - the Compose v2 CLI plugin is built from the Go module proxy when `docker compose` is missing
#     (no release download is reachable here) and installed where the Docker CLI looks for plugins.
# Also debootstrap, which test/compose/stand-ins/build.sh needs. Needs root (or sudo) for what it installs.
set -euo pipefail

COMPOSE_VERSION=v2.29.7
say() { printf 'install-docker: %s\n' "$*"; }
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo

missing=()
command -v dockerd >/dev/null || missing+=(docker.io)
command -v debootstrap >/dev/null || missing+=(debootstrap)
if [ ${#missing[@]} -gt 0 ]; then
  say "installing ${missing[*]} from Debian's packages"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -q >/dev/null
  $SUDO apt-get install -y -q "${missing[@]}" >/dev/null
fi

if docker info >/dev/null 2>&1; then
  say "engine answers: Docker $(docker version --format '{{.Server.Version}}')"
else
  say "starting dockerd"
  $SUDO sh -c 'nohup dockerd >/var/log/ecomstream-dockerd.log 2>&1 &'
  for _ in $(seq 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
  docker info >/dev/null 2>&1 || { tail -20 /var/log/ecomstream-dockerd.log; say "dockerd did not answer within 60 s"; exit 1; }
  say "engine started: Docker $(docker version --format '{{.Server.Version}}')"
fi

if docker compose version >/dev/null 2>&1; then
  say "$(docker compose version)"
else
  command -v go >/dev/null || { say "Go is needed to build Docker Compose (no release download is reachable)"; exit 1; }
  say "building Docker Compose $COMPOSE_VERSION from the Go module proxy (about 2 min)"
  gobin="$(mktemp -d)"
  GOBIN="$gobin" go install -ldflags "-s -w -X github.com/docker/compose/v2/internal.Version=$COMPOSE_VERSION" \
    "github.com/docker/compose/v2/cmd@$COMPOSE_VERSION"
  $SUDO mkdir -p /usr/local/lib/docker/cli-plugins
  $SUDO install -m 0755 "$gobin/cmd" /usr/local/lib/docker/cli-plugins/docker-compose
  rm -rf "$gobin"
  say "$(docker compose version)"
fi
