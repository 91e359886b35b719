#!/usr/bin/env bash
# Provides the public images docker-compose.yml uses, under their own names, where no registry is
# reachable: a local stand-in for each (test/compose/images.json lists them and their Dockerfiles here),
# built from a Debian 12 root filesystem that debootstrap makes from Debian's packages (FROM scratch).
# An image of that name that is not a stand-in (the real one, pulled or loaded) is used as it is.
# Idempotent: a stand-in is rebuilt only when its Dockerfile or files change. Needs root (debootstrap)
# and a running Docker engine (scripts/install-docker.sh).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
IMAGES="$HERE/../images.json"
BASE=ecomstream-standin-base:bookworm
LABEL=org.ecomstream.stand-in
export DOCKER_BUILDKIT=0 # the classic builder: Debian's engine, no buildx plugin

say() { printf 'stand-ins: %s\n' "$*"; }

# The stand-in label of an image, "" when it has none, "absent" when there is no such image.
label_of() {
  local v; v="$(docker image inspect --format "{{ index .Config.Labels \"$LABEL\" }}" "$1" 2>/dev/null)" || { echo absent; return; }
  [ "$v" = "<no value>" ] && v=""
  echo "$v"
}

# A digest of the files an image is built from.
digest_of() { cat "$@" | sha256sum | cut -c1-16; }

build_base() {
  local want; want="$(digest_of "$HERE/base.Dockerfile" /etc/os-release)"
  if [ "$(label_of "$BASE")" = "$want" ]; then say "$BASE is current"; return; fi
  local work; work="$(mktemp -d)"
  trap 'rm -rf "$work"' RETURN
  say "debootstrap: Debian 12 (bookworm, minbase) from Debian's packages"
  debootstrap --variant=minbase --include=ca-certificates bookworm "$work/rootfs" http://deb.debian.org/debian >"$work/debootstrap.log" 2>&1 ||
    { tail -20 "$work/debootstrap.log"; exit 1; }
  printf 'deb http://deb.debian.org/debian bookworm main\ndeb http://deb.debian.org/debian bookworm-updates main\ndeb http://deb.debian.org/debian-security bookworm-security main\n' \
    >"$work/rootfs/etc/apt/sources.list"
  cp /usr/local/share/ca-certificates/*.crt "$work/rootfs/usr/local/share/ca-certificates/" 2>/dev/null || true
  chroot "$work/rootfs" update-ca-certificates >/dev/null
  rm -rf "$work/rootfs/var/cache/apt/archives/"*.deb "$work/rootfs/var/lib/apt/lists/"*
  tar -C "$work/rootfs" -cf "$work/rootfs.tar" .
  cp "$HERE/base.Dockerfile" "$work/Dockerfile"
  docker build -q --label "$LABEL=$want" -t "$BASE" "$work" >/dev/null 2>"$work/build.log" || { cat "$work/build.log"; exit 1; }
  say "built $BASE"
}

# The build context of the Node stand-in gets this machine's Node 20 (Debian's nodejs is 18).
node_context() {
  local ctx="$1" node; node="$(readlink -f "$(command -v node)")"
  mkdir -p "$ctx/node/bin" "$ctx/node/lib"
  cp "$node" "$ctx/node/bin/node"
  cp -r "$(dirname "$node")/../lib/node_modules" "$ctx/node/lib/"
}

build_stand_in() {
  local name="$1" dockerfile="$HERE/../$2" have; have="$(label_of "$name")"
  if [ "$have" != absent ] && [ -z "$have" ]; then say "$name: the real image is here, using it"; return; fi
  local stem; stem="$(basename "$dockerfile" .Dockerfile)"
  local files=("$dockerfile") extra
  for extra in "$HERE/$stem"-*; do [ -e "$extra" ] && files+=("$extra"); done # entrypoints, when it has any
  [ "$stem" = node ] && files+=("$(readlink -f "$(command -v node)")")
  local want; want="$(digest_of "${files[@]}" <(docker image inspect --format '{{.Id}}' "$BASE"))"
  if [ "$have" = "$want" ]; then say "$name: stand-in is current"; return; fi
  local ctx; ctx="$(mktemp -d)"
  cp "${files[@]:0:1}" "$ctx/Dockerfile"
  cp "$HERE/$stem"-* "$ctx/" 2>/dev/null || true
  [ "$stem" = node ] && node_context "$ctx"
  say "$name: building the stand-in ($(basename "$dockerfile"))"
  local t0=$SECONDS
  docker build --label "$LABEL=$want" -t "$name" "$ctx" >"$ctx.log" 2>&1 || { tail -30 "$ctx.log"; rm -rf "$ctx" "$ctx.log"; say "$name: build failed"; exit 1; }
  rm -f "$ctx.log"
  rm -rf "$ctx"
  say "$name: built in $((SECONDS - t0)) s"
}

build_base
# Images without a stand-in (standIn null: images.json says why) are not built, and their services not run.
python3 -c 'import json, sys
for name, facts in json.load(open(sys.argv[1]))["images"].items():
    if facts["standIn"]: print(name, facts["standIn"])' "$IMAGES" |
  while read -r name dockerfile; do build_stand_in "$name" "$dockerfile"; done
docker image prune -f >/dev/null # the layers of stand-ins replaced by a rebuild
