"""The PySpark Structured Streaming job of ecomstream: the same pipeline as the TypeScript engine
(published CSV files -> validation -> PostgreSQL, exactly once) for Spark clusters.

Modules
- contract:  the event contract, read from spark/event_contract.json (exported by the TypeScript side).
- rows:      pure per-file parsing and validation, the twin of src/engine/{read-batch,validate,csv-line}.ts.
- settings:  command-line flags and environment -> one frozen Settings.
- jdbc:      connections to PostgreSQL (JDBC on the driver, psycopg keywords for the executors), their errors.
- target:    where the contract's rows go (table, columns, key, duplicate details, quality score).
- fencing:   one writer per stream: the epoch claimed at start and checked in every batch transaction.
- ledger:    every statement on stream_batches and the rejected_events bookkeeping (mirrors src/db/ledger.ts).
- sink:      staging and the write paths of the PostgreSQL transaction per batch, idempotent by batch id.
- job:       the streaming query and its foreachBatch function.
- progress:  per-batch progress records, the shape the TypeScript engine writes.
- failpoint: crash points for the exactly-once tests.

Runs on the Python of the cluster image (3.8), so no syntax newer than that.
"""
