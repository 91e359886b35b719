#!/bin/bash
# The stand-in Spark image's entrypoint. The Compose file only uses the real entrypoint's pass-through
# mode (Spark-on-Kubernetes' `driver` and `executor` modes are not used), so that is all this does:
# give a uid without a passwd entry one (Spark's Hadoop code asks for the user's name), then exec the
# command unchanged, so the command is the container's main process as in the real image.
set -eo pipefail

if ! getent passwd "$(id -u)" >/dev/null 2>&1 && [ -s /usr/lib/x86_64-linux-gnu/libnss_wrapper.so ]; then
  NSS_WRAPPER_PASSWD="$(mktemp)"
  NSS_WRAPPER_GROUP="$(mktemp)"
  printf 'spark:x:%s:%s:anonymous uid:%s:/bin/false\n' "$(id -u)" "$(id -g)" "$SPARK_HOME" >"$NSS_WRAPPER_PASSWD"
  printf 'spark:x:%s:\n' "$(id -g)" >"$NSS_WRAPPER_GROUP"
  export LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libnss_wrapper.so NSS_WRAPPER_PASSWD NSS_WRAPPER_GROUP
fi

case "$1" in
  driver | executor)
    echo "stand-in image: the Kubernetes '$1' mode of the real entrypoint is not provided" >&2
    exit 64
    ;;
esac
exec "$@"
