"""The executors' connection keywords come from the JDBC URL the job was given (settings.py); the fencing statements from the contract."""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from ecomstream_spark.settings import jdbc_from_database_url
from ecomstream_spark.jdbc import libpq_params


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


def test_fencing_statements_of_the_contract_run_under_jdbc():
    """The epoch statements come from the contract (src/db/epoch.ts): each `$n` once, in order, becomes `?`."""
    from ecomstream_spark.contract import load_contract
    from ecomstream_spark.fencing import Fence, jdbc_statement
    from ecomstream_spark.jdbc import SinkError

    fence = Fence(load_contract(), "s-1")
    for sql in (fence.claim_sql, fence.check_sql, fence.abort_older_sql, fence.lock_timeout_sql):
        assert "$" not in sql
    assert fence.claim_sql.count("?") == 6 and fence.check_sql.count("?") == 2
    assert fence.batch_name == "ecomstream-batch s-1"
    assert jdbc_statement("SELECT $1, $2::int") == "SELECT ?, ?::int"
    for bad in ("SELECT $2, $1", "SELECT $1, $1"):
        try:
            jdbc_statement(bad)
        except SinkError:
            continue
        raise AssertionError("accepted %s" % bad)
