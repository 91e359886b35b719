-- ecomstream schema (spec section 5), idempotent: safe to run on every start.
-- Applied by `ecomstream up` / `ecomstream migrate`, and by Docker Compose's postgres image on first start.

-- Event timestamps are UTC wall-clock times in TIMESTAMP (without time zone) columns, so the
-- database's own clock must be UTC too, or inserted_at - event_timestamp (the spec's latency query) is
-- off by the server's offset.
DO $$
BEGIN
  EXECUTE format('ALTER DATABASE %I SET timezone TO %L', current_database(), 'UTC');
END
$$;
SET timezone TO 'UTC';

CREATE TABLE IF NOT EXISTS user_events (
    id               SERIAL PRIMARY KEY,
    event_id         VARCHAR(36)  NOT NULL,   -- UUID from generator; unique through idx_event_id
    user_id          VARCHAR(50)  NOT NULL,
    event_type       VARCHAR(20)  NOT NULL,
    product_id       VARCHAR(50)  NOT NULL,
    product_name     VARCHAR(200),
    product_category VARCHAR(100),
    price            DECIMAL(10,2),
    event_timestamp  TIMESTAMP    NOT NULL,
    session_id       VARCHAR(100),
    device_type      VARCHAR(50),
    inserted_at      TIMESTAMP DEFAULT CURRENT_TIMESTAMP
);

-- The spec declares event_id UNIQUE *and* a separate idx_event_id: two identical B-trees maintained on
-- every insert (ingest nearly halves). idx_event_id is made the unique index itself, so it both
-- deduplicates and serves lookups; ON CONFLICT (event_id) uses it.
CREATE UNIQUE INDEX IF NOT EXISTS idx_event_id        ON user_events (event_id);
CREATE INDEX        IF NOT EXISTS idx_user_id         ON user_events (user_id);
CREATE INDEX        IF NOT EXISTS idx_event_type      ON user_events (event_type);
CREATE INDEX        IF NOT EXISTS idx_event_timestamp ON user_events (event_timestamp);

CREATE OR REPLACE VIEW event_summary AS
SELECT event_type,
       DATE(event_timestamp)        AS event_date,
       COUNT(*)                     AS event_count,
       COUNT(DISTINCT user_id)      AS unique_users,
       ROUND(AVG(price), 2)         AS avg_price
FROM user_events
GROUP BY event_type, DATE(event_timestamp);

-- Every input row that is not in user_events is here, with a reason code from the event contract.
-- File-level problems (empty file, missing header, vanished file) are rows with line_number 0.
CREATE TABLE IF NOT EXISTS rejected_events (
    id           BIGSERIAL PRIMARY KEY,
    stream_id    VARCHAR(64)  NOT NULL,
    batch_id     BIGINT       NOT NULL,
    source_file  VARCHAR(500) NOT NULL,
    line_number  INTEGER      NOT NULL,
    raw_line     TEXT,
    reason       VARCHAR(40)  NOT NULL,
    detail       TEXT,
    rejected_at  TIMESTAMP    NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE INDEX IF NOT EXISTS idx_rejected_batch  ON rejected_events (stream_id, batch_id);
CREATE INDEX IF NOT EXISTS idx_rejected_reason ON rejected_events (reason);

-- One row per committed micro-batch, written in the same transaction as its rows: the sink's
-- idempotence key. A replayed batch whose (stream_id, batch_id) is here is skipped.
CREATE TABLE IF NOT EXISTS stream_batches (
    stream_id        VARCHAR(64)  NOT NULL,
    batch_id         BIGINT       NOT NULL,
    engine           VARCHAR(20)  NOT NULL,           -- 'typescript' or 'spark'
    files            JSONB        NOT NULL,           -- [{ "name": ..., "size": ..., "mtimeMs": ... }]
    batch_timestamp  TIMESTAMPTZ  NOT NULL,           -- "now" for the 24-hour rule, from offsets/N
    input_rows       INTEGER      NOT NULL,
    inserted_rows    INTEGER      NOT NULL,
    duplicate_rows   INTEGER      NOT NULL,
    rejected_rows    INTEGER      NOT NULL,           -- rule violations and malformed lines, not duplicates
    quality_score    NUMERIC(4,3),                    -- mean data-quality score of the valid rows
    oldest_file_mtime TIMESTAMPTZ,                    -- publish time of the oldest file: latency origin
    newest_file_mtime TIMESTAMPTZ,
    durations_ms     JSONB        NOT NULL DEFAULT '{}',
    committed_at     TIMESTAMPTZ  NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (stream_id, batch_id)
);
CREATE INDEX IF NOT EXISTS idx_stream_batches_committed ON stream_batches (committed_at);
