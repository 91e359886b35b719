# Stand-in for apache/spark:3.5.0-scala2.12-java11-python3-ubuntu (no registry is reachable here), built by
# build.sh under that name. What docker-compose.yml relies on is as in the real image (apache/spark-docker
# 3.5.0): Spark 3.5.0 in /opt/spark (bin/spark-class, bin/spark-submit, jars/, python/lib/ with pyspark.zip
# and py4j), SPARK_HOME, the work dir /opt/spark/work-dir, the user spark (uid 185), python3 with pip and
# no PEP 668 marker (Ubuntu 20.04 has none), and /opt/entrypoint.sh passing any other command through.
# What differs: Debian 12 instead of Ubuntu 20.04, Java 17 instead of 11, Python 3.11 instead of 3.8 —
# test/unit/image-facts.test.ts checks what the real image's versions imply (test/compose/images.json).
FROM ecomstream-standin-base:bookworm

RUN set -eux; \
    apt-get update; \
    apt-get install -y --no-install-recommends openjdk-17-jre-headless python3 python3-pip procps tini gosu \
      libnss-wrapper curl; \
    rm -rf /var/lib/apt/lists/*; \
    rm -f /usr/lib/python3*/EXTERNALLY-MANAGED; \
    mkdir -p /opt/java; ln -s /usr/lib/jvm/java-17-openjdk-amd64 /opt/java/openjdk; \
    groupadd --system --gid=185 spark; \
    useradd --system --uid=185 --gid=spark spark

# The Spark 3.5.0 distribution, as the pyspark source package on PyPI carries it (bin, sbin, jars, data,
# examples, python/lib): the same jars as spark-3.5.0-bin-hadoop3.tgz, from a registry this machine reaches.
ARG PYSPARK_URL=https://files.pythonhosted.org/packages/92/11/5c0f24537fa68624cb6271d2a8a8982e81bd05f5cb51e9d2d2a89baa0e1a/pyspark-3.5.0.tar.gz
ARG PYSPARK_SHA256=d41a9b76bd2aca370a6100d075c029e22ba44c5940927877e9435a3a9c566558
RUN set -eux; \
    cd /tmp; \
    curl -fsSL -o pyspark.tgz "$PYSPARK_URL"; \
    echo "$PYSPARK_SHA256  pyspark.tgz" | sha256sum -c -; \
    tar -xzf pyspark.tgz; \
    mkdir -p /opt/spark/python /opt/spark/work-dir; \
    mv pyspark-3.5.0/deps/bin pyspark-3.5.0/deps/sbin pyspark-3.5.0/deps/jars pyspark-3.5.0/deps/data \
       pyspark-3.5.0/deps/examples /opt/spark/; \
    mv pyspark-3.5.0/lib /opt/spark/python/lib; \
    mv pyspark-3.5.0/pyspark /opt/spark/python/pyspark; \
    rm -rf /tmp/pyspark*; \
    touch /opt/spark/RELEASE; \
    chmod g+w /opt/spark/work-dir; \
    chown -R spark:spark /opt/spark

COPY spark-entrypoint.sh /opt/entrypoint.sh

ENV JAVA_HOME=/opt/java/openjdk \
    PATH=/opt/java/openjdk/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    SPARK_HOME=/opt/spark
WORKDIR /opt/spark/work-dir
USER spark
ENTRYPOINT ["/opt/entrypoint.sh"]
