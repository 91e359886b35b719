#!/bin/bash
# The stand-in PostgreSQL image's entrypoint, with the behaviour of the official image's that the Compose
# file relies on (written for this stand-in, not copied):
#   - as root: own PGDATA, then run again as postgres;
#   - on the first start (no PG_VERSION in PGDATA): initdb with POSTGRES_USER and POSTGRES_PASSWORD, password
#     authentication (scram-sha-256) for every host, a server on the local socket only while
#     POSTGRES_DB is created and /docker-entrypoint-initdb.d/ runs in name order (*.sh run or sourced,
#     *.sql and *.sql.gz through psql, stopping at the first error), then stopped again;
#   - then the command (`postgres`) replaces this script.
set -Eeo pipefail

say() { printf '%s\n' "$*" >&2; }

if [ "${1:0:1}" = '-' ]; then set -- postgres "$@"; fi

if [ "$1" = 'postgres' ] && [ "$(id -u)" = '0' ]; then
  mkdir -p "$PGDATA"
  chown postgres:postgres "$PGDATA"
  chmod 00700 "$PGDATA"
  exec gosu postgres "${BASH_SOURCE[0]}" "$@"
fi

run_initdb_d() {
  local f
  for f in /docker-entrypoint-initdb.d/*; do
    case "$f" in
      *.sh)
        if [ -x "$f" ]; then say "$0: running $f"; "$f"; else say "$0: sourcing $f"; . "$f"; fi ;;
      *.sql) say "$0: running $f"; psql_db -f "$f" ;;
      *.sql.gz) say "$0: running $f"; gunzip -c "$f" | psql_db ;;
      *) [ -e "$f" ] && say "$0: ignoring $f" ;;
    esac
  done
}

psql_db() { psql -v ON_ERROR_STOP=1 --no-psqlrc --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" "$@"; }

first_start() {
  if [ -z "$POSTGRES_PASSWORD" ] && [ "${POSTGRES_HOST_AUTH_METHOD:-}" != 'trust' ]; then
    say 'Error: the database is uninitialized and POSTGRES_PASSWORD is not set.'
    exit 1
  fi
  # shellcheck disable=SC2086 # POSTGRES_INITDB_ARGS is a list of flags
  initdb --username="$POSTGRES_USER" --pwfile=<(printf '%s\n' "$POSTGRES_PASSWORD") ${POSTGRES_INITDB_ARGS:-}
  printf '\nhost all all all %s\n' "${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}" >>"$PGDATA/pg_hba.conf"
  PGUSER="$POSTGRES_USER" pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -p 5432" -w start
  if [ "$POSTGRES_DB" != 'postgres' ]; then
    psql -v ON_ERROR_STOP=1 --no-psqlrc --username "$POSTGRES_USER" --dbname postgres \
      --set db="$POSTGRES_DB" <<<'CREATE DATABASE :"db";'
  fi
  run_initdb_d
  pg_ctl -D "$PGDATA" -m fast -w stop
  say 'PostgreSQL init process complete; ready for start up.'
}

if [ "$1" = 'postgres' ]; then
  : "${POSTGRES_USER:=postgres}"
  : "${POSTGRES_DB:=$POSTGRES_USER}"
  export POSTGRES_USER POSTGRES_DB
  if [ ! -s "$PGDATA/PG_VERSION" ]; then first_start; fi
fi
exec "$@"
