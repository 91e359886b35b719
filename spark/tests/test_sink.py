"""The executors' connection keywords come from the JDBC URL the job was given (settings.py)."""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from ecomstream_spark.settings import jdbc_from_database_url
from ecomstream_spark.sink import libpq_params


def test_libpq_params_from_a_database_url():
    jdbc, user, password = jdbc_from_database_url("postgresql://spark%20user:p%40ss@db-host:5433/ecommerce_events?sslmode=require")
    assert libpq_params(jdbc, user, password) == {
        "host": "db-host",
        "port": 5433,
        "dbname": "ecommerce_events",
        "application_name": "ecomstream-spark-executor",
        "sslmode": "require",
        "user": "spark user",
        "password": "p@ss",
    }


def test_libpq_params_defaults_and_credentials_in_a_jdbc_url():
    assert libpq_params("jdbc:postgresql://h/db?user=u&password=pw", None, None) == {
        "host": "h",
        "port": 5432,
        "dbname": "db",
        "application_name": "ecomstream-spark-executor",
        "user": "u",
        "password": "pw",
    }
