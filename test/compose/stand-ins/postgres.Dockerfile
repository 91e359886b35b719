# Stand-in for postgres:15-alpine (no registry is reachable here), built by build.sh under that name.
# What docker-compose.yml relies on is as in the real image (docker-library/postgres 15/alpine):
# PostgreSQL 15 with pg_isready and psql on PATH, the user postgres (uid 70), PGDATA
# /var/lib/postgresql/data, and the entrypoint's first start: initdb from POSTGRES_USER / POSTGRES_PASSWORD,
# POSTGRES_DB created, /docker-entrypoint-initdb.d/*.sql, *.sql.gz and *.sh run in name order, password
# authentication from other hosts, then the server in the foreground. Debian's PostgreSQL 15 instead of
# Alpine's; what differs cannot matter to the Compose file (test/compose/images.json).
FROM ecomstream-standin-base:bookworm

RUN set -eux; \
    groupadd --system --gid 70 postgres; \
    useradd --system --uid 70 --gid 70 --home-dir /var/lib/postgresql --shell /bin/sh postgres; \
    mkdir -p /etc/postgresql-common/createcluster.d /var/lib/postgresql; \
    echo 'create_main_cluster = false' >/etc/postgresql-common/createcluster.d/no-main-cluster.conf; \
    apt-get update; \
    apt-get install -y --no-install-recommends postgresql-15 gosu; \
    rm -rf /var/lib/apt/lists/*; \
    sed -ri "s!^#?(listen_addresses)\s*=\s*\S+.*!\1 = '*'!" /usr/share/postgresql/15/postgresql.conf.sample; \
    mkdir -p /var/run/postgresql /docker-entrypoint-initdb.d; \
    chown -R postgres:postgres /var/run/postgresql /var/lib/postgresql; \
    chmod 3777 /var/run/postgresql

COPY postgres-entrypoint.sh /usr/local/bin/docker-entrypoint.sh

ENV PATH=/usr/lib/postgresql/15/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PGDATA=/var/lib/postgresql/data
VOLUME /var/lib/postgresql/data
ENTRYPOINT ["docker-entrypoint.sh"]
STOPSIGNAL SIGINT
EXPOSE 5432
CMD ["postgres"]
