# Stand-in for dpage/pgadmin4 (no registry is reachable here), built by build.sh under that name. As in the
# real image (pgadmin-org/pgadmin4 Dockerfile): pgAdmin 4 in /pgadmin4, run by gunicorn from /venv on port 80
# as the user pgadmin (uid 5050, group root), its data in /var/lib/pgadmin, and the entrypoint's first
# start: the login from PGADMIN_DEFAULT_EMAIL / PGADMIN_DEFAULT_PASSWORD and the servers of
# PGADMIN_SERVER_JSON_FILE imported for that user. pgAdmin here is the pgadmin4 package from PyPI on
# Debian's Python, the real image's is built from source on Alpine's; the Compose file sees the same.
FROM ecomstream-standin-base:bookworm

RUN set -eux; \
    apt-get update; \
    apt-get install -y --no-install-recommends python3 python3-venv libpq5; \
    rm -rf /var/lib/apt/lists/*; \
    python3 -m venv /venv; \
    /venv/bin/pip install --no-cache-dir pgadmin4 gunicorn==23.0.0
# pgadmin4 is a namespace package: its folder is the first of its __path__.
RUN set -eux; \
    ln -s "$(/venv/bin/python3 -c 'import pgadmin4; print(list(pgadmin4.__path__)[0])')" /pgadmin4; \
    printf 'import builtins\nbuiltins.SERVER_MODE = True\nfrom pgAdmin4 import app  # noqa\n' >/pgadmin4/run_pgadmin.py; \
    useradd -r -u 5050 -g root -s /sbin/nologin pgadmin; \
    mkdir -p /var/lib/pgadmin /run/pgadmin; \
    chown pgadmin:root /var/lib/pgadmin /run/pgadmin; \
    chmod g=u /var/lib/pgadmin; \
    : >/pgadmin4/config_distro.py; \
    chown pgadmin:root /pgadmin4/config_distro.py

COPY pgadmin-entrypoint.sh /entrypoint.sh
WORKDIR /pgadmin4
ENV PYTHONPATH=/pgadmin4
USER 5050
VOLUME /var/lib/pgadmin
EXPOSE 80
ENTRYPOINT ["/entrypoint.sh"]
