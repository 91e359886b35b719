"""Entry point of the ecomstream Spark job.

    spark-submit --packages org.postgresql:postgresql:42.7.7 spark/streaming_job.py [flags]   # a cluster
    spark/.venv/bin/python spark/streaming_job.py [flags]                                     # local mode
    npm run spark:local -- [flags]                                   # local mode, the project's database

`--help` lists the flags. Exit code 0 after a clean stop (or an available-now run), 1 when the query
failed, 2 on a wrong flag or setting.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from ecomstream_spark.contract import ContractError, load_contract
from ecomstream_spark.settings import SettingsError, load_settings


def main(argv=None):
    try:
        settings = load_settings(argv)
        contract = load_contract(settings.contract)
    except (SettingsError, ContractError) as e:
        sys.stderr.write("ecomstream-spark: %s\n" % e)
        return 2
    if settings.print_settings:
        import json

        print(json.dumps(settings.as_dict(), indent=2, sort_keys=True))
        return 0
    from ecomstream_spark.job import StreamingJob, build_session
    from ecomstream_spark.jdbc import SinkError

    try:
        spark = build_session(settings)
        try:
            return StreamingJob(spark, settings, contract).run()
        finally:
            spark.stop()
    except SinkError as e:  # its message names the database, file or batch: one line, not a traceback
        sys.stderr.write("ecomstream-spark: %s\n" % e)
        return 1
    except ContractError as e:  # the contract does not fit this Spark (job.check_hidden_prefixes)
        sys.stderr.write("ecomstream-spark: %s\n" % e)
        return 2


if __name__ == "__main__":
    sys.exit(main())
