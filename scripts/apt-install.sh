# Sourced by the install-*.sh scripts: `apt_install WHO PACKAGE...` runs apt-get install as root, or
# through sudo, without starting any service a package brings (invoke-rc.d asks policy-rc.d, and 101
# means no: these machines have no systemd as PID 1, and a package's init script would start its daemon).
apt_install() {
  who="$1"
  shift
  if [ "$(id -u)" -eq 0 ]; then
    SUDO=""
  elif command -v sudo >/dev/null 2>&1; then
    SUDO="sudo"
  else
    echo "$who: need root (or sudo) to run apt-get install $*" >&2
    exit 1
  fi
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    trap '$SUDO rm -f /usr/sbin/policy-rc.d' EXIT
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
    $SUDO chmod 0755 /usr/sbin/policy-rc.d
  fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update
  $SUDO apt-get install -y --no-install-recommends "$@"
}
