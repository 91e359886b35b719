-- Migration 0003: fencing, one writer per stream (docs/reliability.md, "Two engines on one checkpoint").
-- One row per stream: the epoch that each engine start (TypeScript or Spark) increments and keeps, and
-- who holds it. Every batch transaction reads its stream's row FOR SHARE and rolls back unless its epoch is
-- still the newest, so an engine that lost its checkpoint's lock (a frozen container, a lock file removed
-- by hand, another host) can never commit. The statements are in src/db/epoch.ts, and the Spark job runs
-- the same ones (they travel in spark/event_contract.json). Plain SQL: Docker's initdb runs it as it is.
CREATE TABLE IF NOT EXISTS stream_epochs (
    stream_id   VARCHAR(64)  PRIMARY KEY,
    epoch       BIGINT       NOT NULL,          -- 1 for the stream's first start, +1 for each start after
    engine      VARCHAR(20)  NOT NULL,          -- of the newest holder: 'typescript' or 'spark'
    host        TEXT         NOT NULL,          -- its host name, pid (in its own PID namespace) and the
    pid         INTEGER      NOT NULL,          -- time its process started: what a fenced engine names
    started_at  TIMESTAMPTZ  NOT NULL,
    source      TEXT         NOT NULL           -- the input folder, as that engine named it (information)
);

INSERT INTO schema_migrations (version, name) VALUES (3, 'stream_epochs') ON CONFLICT (version) DO NOTHING;
