#!/bin/sh
# The stand-in Node image's entrypoint, as the official one behaves: flags or a script name run under node,
# any other command runs as given.
set -e
if [ "${1#-}" != "$1" ] || [ -z "$(command -v "${1}")" ] || { [ -f "${1}" ] && ! [ -x "${1}" ]; }; then
  set -- node "$@"
fi
exec "$@"
