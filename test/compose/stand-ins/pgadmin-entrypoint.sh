#!/bin/bash
# The stand-in pgAdmin image's entrypoint, with the behaviour of the official one that the Compose file
# relies on (written for this stand-in, not copied): on the first start (no /var/lib/pgadmin/pgadmin4.db)
# it needs PGADMIN_DEFAULT_EMAIL and PGADMIN_DEFAULT_PASSWORD, creates pgAdmin's database with that login,
# and imports PGADMIN_SERVER_JSON_FILE (default /pgadmin4/servers.json) for that user; PGADMIN_CONFIG_X=v
# becomes `X = v` in config_distro.py; then gunicorn serves pgAdmin on port 80 (PGADMIN_LISTEN_PORT).
set -eo pipefail

if [ ! -s /pgadmin4/config_distro.py ]; then
  {
    echo "CA_FILE = '/etc/ssl/certs/ca-certificates.crt'"
    echo "LOG_FILE = '/dev/null'"
    env | sed -n 's/^PGADMIN_CONFIG_\([A-Za-z0-9_]*\)=\(.*\)$/\1 = \2/p'
  } >/pgadmin4/config_distro.py
fi

if [ ! -f /var/lib/pgadmin/pgadmin4.db ]; then
  if [ -z "$PGADMIN_DEFAULT_EMAIL" ] || [ -z "$PGADMIN_DEFAULT_PASSWORD" ]; then
    echo 'You need to define the PGADMIN_DEFAULT_EMAIL and PGADMIN_DEFAULT_PASSWORD environment variables.' >&2
    exit 1
  fi
  export PGADMIN_SETUP_EMAIL="$PGADMIN_DEFAULT_EMAIL" PGADMIN_SETUP_PASSWORD="$PGADMIN_DEFAULT_PASSWORD"
  # Importing the application creates its database and the first user.
  /venv/bin/python3 /pgadmin4/run_pgadmin.py
  servers="${PGADMIN_SERVER_JSON_FILE:-/pgadmin4/servers.json}"
  if [ -f "$servers" ]; then
    /venv/bin/python3 /pgadmin4/setup.py load-servers "$servers" --user "$PGADMIN_DEFAULT_EMAIL"
  fi
fi

exec /venv/bin/gunicorn --bind "${PGADMIN_LISTEN_ADDRESS:-[::]}:${PGADMIN_LISTEN_PORT:-80}" -w 1 \
  --threads "${GUNICORN_THREADS:-25}" --access-logfile - --chdir /pgadmin4 run_pgadmin:app
