# Stand-in for prom/prometheus:v2.42.0 (no registry is reachable here), built by build.sh under that name.
# What docker-compose.yml relies on is as in the real image (prometheus/prometheus Dockerfile, v2.42.0):
# /bin/prometheus as the entrypoint and /bin/promtool, the default flags as CMD, /etc/prometheus/prometheus.yml,
# the user nobody (65534) owning /prometheus (WORKDIR and VOLUME), port 9090, and BusyBox's wget (the
# Compose health check). Prometheus here is Debian's 2.42.0 package; the real image has the upstream build
# of the same version on a BusyBox root filesystem (test/compose/images.json).
FROM ecomstream-standin-base:bookworm

# policy-rc.d: the package's init script must not start a Prometheus during the build.
RUN set -eux; \
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d; chmod 0755 /usr/sbin/policy-rc.d; \
    apt-get update; \
    apt-get install -y --no-install-recommends prometheus busybox; \
    rm -rf /var/lib/apt/lists/* /usr/sbin/policy-rc.d; \
    ln -s /bin/busybox /usr/local/bin/wget; \
    mkdir -p /prometheus /usr/share/prometheus; \
    ln -s /etc/prometheus/consoles /usr/share/prometheus/consoles; \
    ln -s /etc/prometheus/console_libraries /usr/share/prometheus/console_libraries; \
    chown -R nobody:nogroup /etc/prometheus /prometheus; \
    /bin/prometheus --version

USER nobody
EXPOSE 9090
VOLUME ["/prometheus"]
WORKDIR /prometheus
ENTRYPOINT ["/bin/prometheus"]
CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus", "--web.console.libraries=/usr/share/prometheus/console_libraries", "--web.console.templates=/usr/share/prometheus/consoles"]
