-- Migration 0001: the record of applied migrations. Each file in postgres/migrations/ is applied once, in
-- number order, in one transaction, and inserts its own row here, so a database that Docker's initdb
-- prepared (it runs the files in name order, without `ecomstream migrate`) is recorded the same way.
-- `ecomstream migrate` also stores each file's SHA-256 and refuses to go on when an applied file changed.
CREATE TABLE IF NOT EXISTS schema_migrations (
    version     INTEGER     PRIMARY KEY,
    name        TEXT        NOT NULL,
    checksum    TEXT,                              -- sha256 of the file; NULL when initdb applied it
    applied_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
INSERT INTO schema_migrations (version, name) VALUES (1, 'schema_migrations') ON CONFLICT (version) DO NOTHING;
