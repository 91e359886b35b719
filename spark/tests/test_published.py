"""The published-file rule of the contract (`published`) and what Spark's file source hides: the job reads
the suffix from the contract and refuses at start-up a contract whose hiddenPrefixes are not exactly the
names Spark hides (job.check_hidden_prefixes)."""

import copy
import os
import shutil
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from ecomstream_spark.contract import Contract, ContractError, load_contract
from ecomstream_spark.job import check_hidden_prefixes, glob_literal, spark_hides_name

CONTRACT = load_contract()


def spark_3_5_hides(name):
    """HadoopFSUtils.shouldFilterOutPathName of Spark 3.5, for the names these tests probe with."""
    exclude = (name.startswith("_") and "=" not in name) or name.startswith(".") or name.endswith("._COPYING_")
    include = name.startswith("_common_metadata") or name.startswith("_metadata")
    return exclude and not include


def with_prefixes(prefixes):
    raw = copy.deepcopy(CONTRACT.raw)
    raw["published"]["hiddenPrefixes"] = prefixes
    return Contract(raw, "test-contract.json")


def test_the_contract_hides_what_spark_hides():
    assert CONTRACT.published_suffix == ".csv" and CONTRACT.hidden_prefixes == [".", "_"]
    check_hidden_prefixes(CONTRACT, spark_3_5_hides)


@pytest.mark.parametrize("prefixes", [["."], [".", "_", "~"], ["_", "#"], []])
def test_hidden_prefixes_other_than_sparks_are_refused(prefixes):
    with pytest.raises(ContractError, match=r"test-contract\.json: published\.hiddenPrefixes .* are not what Spark's file source hides"):
        check_hidden_prefixes(with_prefixes(prefixes), spark_3_5_hides)


def test_a_spark_that_cannot_be_asked_is_refused():
    def gone(name):
        raise RuntimeError("py4j: no such method")

    with pytest.raises(ContractError, match="cannot ask Spark which file names its file source hides"):
        check_hidden_prefixes(CONTRACT, gone)


def test_the_glob_of_the_suffix_matches_it_literally():
    assert "*" + glob_literal(CONTRACT.published_suffix) == "*.csv"
    assert glob_literal("a*b?[c]{d}\\") == "a\\*b\\?\\[c\\]\\{d\\}\\\\"


@pytest.mark.skipif(shutil.which("java") is None, reason="no java: Spark's JVM cannot start")
def test_the_installed_spark_hides_what_the_contract_says():
    """Asked of the installed Spark's JVM, as the job asks it at start-up (job.spark_hides_name)."""
    from pyspark.java_gateway import launch_gateway

    gateway = launch_gateway()
    try:
        spark_hides = spark_hides_name(gateway.jvm)
        assert spark_hides("_events.csv") and not spark_hides("events.csv")
        check_hidden_prefixes(CONTRACT, spark_hides)
        with pytest.raises(ContractError):
            check_hidden_prefixes(with_prefixes(["."]), spark_hides)
    finally:
        gateway.shutdown()
