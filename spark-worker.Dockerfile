# The Spark worker of the Docker Compose deployment: the spec's Spark image plus what the job's executors
# import beyond Spark (spark/requirements-executor.txt: psycopg, for the COPY into staging). Master, driver
# and the folder setup run the spec's image unchanged. Built by `docker compose up` (service spark-worker).
FROM apache/spark:3.5.0-scala2.12-java11-python3-ubuntu
USER root
COPY spark/requirements-executor.txt /tmp/requirements-executor.txt
RUN python3 -m pip install --no-cache-dir -r /tmp/requirements-executor.txt && rm /tmp/requirements-executor.txt
# The image's own user (uid 185), as in the base image.
USER spark
