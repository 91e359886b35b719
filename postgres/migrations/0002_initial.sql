-- Migration 0002: the ecomstream schema (spec section 5) as postgres/init.sql had it before numbered
-- migrations; idempotent, so a database that init.sql created upgrades by running it again. Immutable:
-- a change to the schema is a new numbered file in postgres/migrations/ (see docs/contracts.md).
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

-- ===== Dashboard aggregates (maintained by triggers in the batch transaction) =====
-- Owned by the dashboard (src/dashboard). Why: the page refreshes within a second of every batch and
-- must stay under 50 ms of database time at 10,000,000 rows, so it never scans user_events. Statement-
-- level AFTER triggers with transition tables fold each INSERT / COPY into the small dash_* tables inside
-- the batch's own transaction: the aggregates commit or roll back with the rows, and both engines
-- (TypeScript and PySpark) keep them right without knowing they exist. One aggregate statement per target
-- table per statement on a base table; a per-row trigger would cost a function call per row.
-- `SELECT dash_rebuild();` recomputes everything from the base tables (the backfill below uses it).

-- Events by type; also the spec's latency query (AVG(inserted_at - event_timestamp)) as a running sum.
CREATE TABLE IF NOT EXISTS dash_event_types (
    event_type       VARCHAR(20)      PRIMARY KEY,
    events           BIGINT           NOT NULL,
    priced_events    BIGINT           NOT NULL,
    price_sum        NUMERIC          NOT NULL,
    latency_sum_s    DOUBLE PRECISION NOT NULL,   -- sum of inserted_at - event_timestamp, seconds
    latency_n        BIGINT           NOT NULL,
    max_event_ts     TIMESTAMP,                   -- newest event stored (deletes do not lower it)
    max_inserted_at  TIMESTAMP
);

-- Keys are '' where the column is NULL (a primary key cannot be NULL); the page shows "(none)".
CREATE TABLE IF NOT EXISTS dash_categories (
    product_category VARCHAR(100) PRIMARY KEY,
    events           BIGINT  NOT NULL,
    purchases        BIGINT  NOT NULL,
    revenue          NUMERIC NOT NULL             -- sum(price) of purchases (spec: revenue by category)
);

CREATE TABLE IF NOT EXISTS dash_devices (
    device_type      VARCHAR(50) PRIMARY KEY,
    events           BIGINT  NOT NULL,
    purchases        BIGINT  NOT NULL,
    revenue          NUMERIC NOT NULL
);

CREATE TABLE IF NOT EXISTS dash_products (
    product_id       VARCHAR(50) PRIMARY KEY,
    product_name     VARCHAR(200),
    product_category VARCHAR(100),
    events           BIGINT  NOT NULL,
    purchases        BIGINT  NOT NULL,
    revenue          NUMERIC NOT NULL
);

-- Rejected rows by reason code, with the newest few raw lines: examples without searching rejected_events.
CREATE TABLE IF NOT EXISTS dash_rejects (
    reason           VARCHAR(40) PRIMARY KEY,
    rows             BIGINT    NOT NULL,
    last_rejected_at TIMESTAMP,
    examples         JSONB     NOT NULL DEFAULT '[]'   -- newest first, at most 3
);

-- Per stream (one engine's checkpoint): batch counts, and the data-quality score as a weighted sum.
CREATE TABLE IF NOT EXISTS dash_streams (
    stream_id          VARCHAR(64) PRIMARY KEY,
    engine             VARCHAR(20) NOT NULL,
    batches            BIGINT      NOT NULL,
    files              BIGINT      NOT NULL,
    input_rows         BIGINT      NOT NULL,
    inserted_rows      BIGINT      NOT NULL,
    duplicate_rows     BIGINT      NOT NULL,
    rejected_rows      BIGINT      NOT NULL,
    quality_sum        NUMERIC     NOT NULL,       -- sum(quality_score * scored rows)
    quality_rows       BIGINT      NOT NULL,
    last_batch_id      BIGINT,
    first_committed_at TIMESTAMPTZ,
    last_committed_at  TIMESTAMPTZ
);

-- Committed batches over time, in buckets of res_s seconds by committed_at: 5 s buckets draw a demo of a
-- file every 5 s as a curve (kept 2 days), 1 min buckets keep a 24 h chart at 1,440 rows to read.
CREATE TABLE IF NOT EXISTS dash_timeline (
    res_s            SMALLINT         NOT NULL,
    bucket           TIMESTAMPTZ      NOT NULL,
    batches          BIGINT           NOT NULL,
    files            BIGINT           NOT NULL,
    input_rows       BIGINT           NOT NULL,
    inserted_rows    BIGINT           NOT NULL,
    duplicate_rows   BIGINT           NOT NULL,
    rejected_rows    BIGINT           NOT NULL,
    duration_ms_sum  DOUBLE PRECISION NOT NULL,
    duration_ms_max  DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (res_s, bucket)
);

-- Latency from file publish (its mtime) to commit, as a histogram per bucket: p50 / p99 over any window
-- come from summed counts (log buckets, factor 1.25, so within ~12 %) instead of sorting every file.
-- idx 0: under 1 ms; idx i >= 1: [1.25^(i-1), 1.25^i) ms; idx 79 also holds everything longer.
-- src/dashboard/latency.ts reads it with the same constants.
CREATE TABLE IF NOT EXISTS dash_latency (
    res_s            SMALLINT    NOT NULL,
    bucket           TIMESTAMPTZ NOT NULL,
    idx              SMALLINT    NOT NULL,
    files            BIGINT      NOT NULL,
    PRIMARY KEY (res_s, bucket, idx)
);

CREATE TABLE IF NOT EXISTS dash_state (
    id               SMALLINT PRIMARY KEY CHECK (id = 1),
    built_at         TIMESTAMPTZ NOT NULL
);

CREATE OR REPLACE FUNCTION dash_bucket(ts TIMESTAMPTZ, res_s SMALLINT) RETURNS TIMESTAMPTZ
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
$$ SELECT date_bin(make_interval(secs => res_s), ts, TIMESTAMPTZ '2000-01-01 00:00:00+00') $$;

CREATE OR REPLACE FUNCTION dash_latency_idx(ms DOUBLE PRECISION) RETURNS SMALLINT
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
$$ SELECT CASE WHEN ms IS NULL THEN NULL
               WHEN ms < 1 THEN 0
               ELSE least(79, floor(ln(ms) / ln(1.25::DOUBLE PRECISION)) + 1)::SMALLINT END $$;

-- Defensive about JSON shapes throughout: a trigger that throws would fail the engine's batch.
CREATE OR REPLACE FUNCTION dash_file_count(files JSONB) RETURNS INTEGER
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
$$ SELECT CASE WHEN jsonb_typeof(files) = 'array' THEN jsonb_array_length(files) ELSE 0 END $$;

-- A batch's duration: durations_ms.total when the engine reports it, else the sum of its phases, else
-- the time from planning (batch_timestamp) to the batch record.
CREATE OR REPLACE FUNCTION dash_batch_ms(durations JSONB, batch_ts TIMESTAMPTZ, committed TIMESTAMPTZ) RETURNS DOUBLE PRECISION
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
$$ SELECT coalesce(
     CASE WHEN jsonb_typeof(durations -> 'total') = 'number' THEN (durations ->> 'total')::DOUBLE PRECISION END,
     (SELECT sum(v::text::DOUBLE PRECISION) FROM jsonb_each(CASE WHEN jsonb_typeof(durations) = 'object' THEN durations ELSE '{}' END) AS e(k, v)
       WHERE jsonb_typeof(v) = 'number'),
     greatest(0, extract(epoch FROM committed - batch_ts) * 1000)::DOUBLE PRECISION) $$;

-- Per-file publish times of a batch record: files[].mtimeMs (TypeScript engine), else the batch's
-- oldest_file_mtime for an engine that records less.
CREATE OR REPLACE FUNCTION dash_file_mtimes_ms(files JSONB, oldest TIMESTAMPTZ) RETURNS SETOF DOUBLE PRECISION
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
$$ SELECT coalesce(CASE WHEN jsonb_typeof(f -> 'mtimeMs') = 'number' THEN (f ->> 'mtimeMs')::DOUBLE PRECISION END,
                   extract(epoch FROM oldest) * 1000)
   FROM jsonb_array_elements(CASE WHEN jsonb_typeof(files) = 'array' THEN files ELSE '[]' END) AS f $$;

-- How the rows of one statement fold into the aggregates, written once per base table: %1$s is the
-- relation (a transition table, or the base table itself for dash_rebuild), %2$s the sign (1 adds
-- inserted rows, -1 subtracts deleted ones). The DO block below turns these into static trigger
-- functions, whose plans PL/pgSQL caches per connection (EXECUTE would plan again on every batch).
-- Rows go in key order, so concurrent writers lock aggregate rows in one order.
CREATE OR REPLACE FUNCTION dash_fold_sql(base TEXT, rel TEXT, sign INTEGER) RETURNS TEXT
LANGUAGE plpgsql IMMUTABLE AS
$fn$
DECLARE
  stmts TEXT[];
BEGIN
  IF base = 'user_events' THEN
    stmts := ARRAY[
      $q$INSERT INTO dash_event_types AS t (event_type, events, priced_events, price_sum, latency_sum_s, latency_n, max_event_ts, max_inserted_at)
         SELECT event_type, %2$s * count(*), %2$s * count(price), %2$s * coalesce(sum(price), 0),
                %2$s * coalesce(sum(date_part('epoch', inserted_at - event_timestamp)), 0), %2$s * count(inserted_at),
                CASE WHEN %2$s > 0 THEN max(event_timestamp) END, CASE WHEN %2$s > 0 THEN max(inserted_at) END
         FROM %1$s GROUP BY event_type ORDER BY event_type
         ON CONFLICT (event_type) DO UPDATE SET
           events = t.events + excluded.events, priced_events = t.priced_events + excluded.priced_events,
           price_sum = t.price_sum + excluded.price_sum, latency_sum_s = t.latency_sum_s + excluded.latency_sum_s,
           latency_n = t.latency_n + excluded.latency_n,
           max_event_ts = greatest(t.max_event_ts, excluded.max_event_ts),
           max_inserted_at = greatest(t.max_inserted_at, excluded.max_inserted_at)$q$,
      $q$INSERT INTO dash_categories AS t (product_category, events, purchases, revenue)
         SELECT coalesce(product_category, ''), %2$s * count(*), %2$s * count(*) FILTER (WHERE event_type = 'purchase'),
                %2$s * coalesce(sum(price) FILTER (WHERE event_type = 'purchase'), 0)
         FROM %1$s GROUP BY 1 ORDER BY 1
         ON CONFLICT (product_category) DO UPDATE SET
           events = t.events + excluded.events, purchases = t.purchases + excluded.purchases, revenue = t.revenue + excluded.revenue$q$,
      $q$INSERT INTO dash_devices AS t (device_type, events, purchases, revenue)
         SELECT coalesce(device_type, ''), %2$s * count(*), %2$s * count(*) FILTER (WHERE event_type = 'purchase'),
                %2$s * coalesce(sum(price) FILTER (WHERE event_type = 'purchase'), 0)
         FROM %1$s GROUP BY 1 ORDER BY 1
         ON CONFLICT (device_type) DO UPDATE SET
           events = t.events + excluded.events, purchases = t.purchases + excluded.purchases, revenue = t.revenue + excluded.revenue$q$,
      $q$INSERT INTO dash_products AS t (product_id, product_name, product_category, events, purchases, revenue)
         SELECT product_id, max(product_name), max(product_category), %2$s * count(*),
                %2$s * count(*) FILTER (WHERE event_type = 'purchase'),
                %2$s * coalesce(sum(price) FILTER (WHERE event_type = 'purchase'), 0)
         FROM %1$s GROUP BY product_id ORDER BY product_id
         ON CONFLICT (product_id) DO UPDATE SET
           product_name = coalesce(excluded.product_name, t.product_name),
           product_category = coalesce(excluded.product_category, t.product_category),
           events = t.events + excluded.events, purchases = t.purchases + excluded.purchases, revenue = t.revenue + excluded.revenue$q$];
  ELSIF base = 'rejected_events' THEN
    stmts := ARRAY[
      $q$INSERT INTO dash_rejects AS t (reason, rows, last_rejected_at, examples)
         SELECT reason, %2$s * count(*), CASE WHEN %2$s > 0 THEN max(rejected_at) END,
                CASE WHEN %2$s > 0 THEN to_jsonb((array_agg(jsonb_build_object(
                    'file', source_file, 'line', line_number, 'raw', left(raw_line, 300), 'detail', left(detail, 300))
                    ORDER BY id DESC))[1:3]) ELSE '[]' END
         FROM %1$s GROUP BY reason ORDER BY reason
         ON CONFLICT (reason) DO UPDATE SET
           rows = t.rows + excluded.rows,
           last_rejected_at = greatest(t.last_rejected_at, excluded.last_rejected_at),
           examples = CASE WHEN %2$s > 0
                           THEN coalesce((SELECT jsonb_agg(e ORDER BY n) FROM jsonb_array_elements(excluded.examples || t.examples)
                                            WITH ORDINALITY AS x(e, n) WHERE n <= 3), '[]')
                           ELSE t.examples END$q$];
  ELSIF base = 'stream_batches' THEN
    -- Batch records are only ever inserted (they are the sink's idempotence key): no sign.
    stmts := ARRAY[
      $q$INSERT INTO dash_streams AS t (stream_id, engine, batches, files, input_rows, inserted_rows, duplicate_rows, rejected_rows,
                                      quality_sum, quality_rows, last_batch_id, first_committed_at, last_committed_at)
         SELECT stream_id, (array_agg(engine ORDER BY batch_id DESC))[1], count(*), sum(dash_file_count(files)),
                sum(input_rows), sum(inserted_rows), sum(duplicate_rows), sum(rejected_rows),
                coalesce(sum(quality_score * greatest(input_rows - rejected_rows, 0)), 0),
                coalesce(sum(greatest(input_rows - rejected_rows, 0)) FILTER (WHERE quality_score IS NOT NULL), 0),
                max(batch_id), min(committed_at), max(committed_at)
         FROM %1$s GROUP BY stream_id ORDER BY stream_id
         ON CONFLICT (stream_id) DO UPDATE SET
           engine = excluded.engine, batches = t.batches + excluded.batches, files = t.files + excluded.files,
           input_rows = t.input_rows + excluded.input_rows, inserted_rows = t.inserted_rows + excluded.inserted_rows,
           duplicate_rows = t.duplicate_rows + excluded.duplicate_rows, rejected_rows = t.rejected_rows + excluded.rejected_rows,
           quality_sum = t.quality_sum + excluded.quality_sum, quality_rows = t.quality_rows + excluded.quality_rows,
           last_batch_id = greatest(t.last_batch_id, excluded.last_batch_id),
           first_committed_at = least(t.first_committed_at, excluded.first_committed_at),
           last_committed_at = greatest(t.last_committed_at, excluded.last_committed_at)$q$,
      $q$INSERT INTO dash_timeline AS t (res_s, bucket, batches, files, input_rows, inserted_rows, duplicate_rows, rejected_rows,
                                       duration_ms_sum, duration_ms_max)
         SELECT r.res_s, dash_bucket(b.committed_at, r.res_s), count(*), sum(dash_file_count(b.files)),
                sum(b.input_rows), sum(b.inserted_rows), sum(b.duplicate_rows), sum(b.rejected_rows),
                coalesce(sum(dash_batch_ms(b.durations_ms, b.batch_timestamp, b.committed_at)), 0),
                coalesce(max(dash_batch_ms(b.durations_ms, b.batch_timestamp, b.committed_at)), 0)
         FROM %1$s b CROSS JOIN (VALUES (5::SMALLINT), (60::SMALLINT)) AS r(res_s)
         GROUP BY 1, 2 ORDER BY 1, 2
         ON CONFLICT (res_s, bucket) DO UPDATE SET
           batches = t.batches + excluded.batches, files = t.files + excluded.files,
           input_rows = t.input_rows + excluded.input_rows, inserted_rows = t.inserted_rows + excluded.inserted_rows,
           duplicate_rows = t.duplicate_rows + excluded.duplicate_rows, rejected_rows = t.rejected_rows + excluded.rejected_rows,
           duration_ms_sum = t.duration_ms_sum + excluded.duration_ms_sum,
           duration_ms_max = greatest(t.duration_ms_max, excluded.duration_ms_max)$q$,
      $q$INSERT INTO dash_latency AS t (res_s, bucket, idx, files)
         SELECT r.res_s, dash_bucket(b.committed_at, r.res_s), dash_latency_idx(extract(epoch FROM b.committed_at) * 1000 - m.ms), count(*)
         FROM %1$s b CROSS JOIN LATERAL dash_file_mtimes_ms(b.files, b.oldest_file_mtime) AS m(ms)
              CROSS JOIN (VALUES (5::SMALLINT), (60::SMALLINT)) AS r(res_s)
         WHERE m.ms IS NOT NULL
         GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
         ON CONFLICT (res_s, bucket, idx) DO UPDATE SET files = t.files + excluded.files$q$];
  ELSE
    RAISE EXCEPTION 'dash_fold_sql: no aggregates for %', base;
  END IF;
  RETURN (SELECT string_agg(format(s, rel, sign), E';\n') FROM unnest(stmts) AS s) || ';';
END
$fn$;

-- Groups whose count falls to zero after a delete are removed: the shape of a GROUP BY.
CREATE OR REPLACE FUNCTION dash_cleanup_sql(base TEXT) RETURNS TEXT
LANGUAGE sql IMMUTABLE AS
$$ SELECT CASE base
     WHEN 'user_events' THEN 'DELETE FROM dash_event_types WHERE events <= 0; DELETE FROM dash_categories WHERE events <= 0;
                              DELETE FROM dash_devices WHERE events <= 0; DELETE FROM dash_products WHERE events <= 0;'
     WHEN 'rejected_events' THEN 'DELETE FROM dash_rejects WHERE rows <= 0;'
     ELSE '' END $$;

-- The trigger functions, generated from dash_fold_sql. Each takes one transaction-level advisory lock
-- first: two engines writing events and rejects in different orders must not deadlock and fail a batch.
-- NOTIFY (batches) is delivered at commit, so the dashboard hears of a batch exactly when it is visible.
DO $build$
DECLARE
  base TEXT;
  template CONSTANT TEXT := $t$
    CREATE OR REPLACE FUNCTION %I() RETURNS trigger LANGUAGE plpgsql AS $body$
    BEGIN
      PERFORM pg_advisory_xact_lock(727275);
      %s
      RETURN NULL;
    END
    $body$$t$;
BEGIN
  FOREACH base IN ARRAY ARRAY['user_events', 'rejected_events'] LOOP
    EXECUTE format(template, 'dash_' || base || '_ins', dash_fold_sql(base, 'new_rows', 1));
    EXECUTE format(template, 'dash_' || base || '_del', dash_fold_sql(base, 'old_rows', -1) || dash_cleanup_sql(base));
    EXECUTE format(template, 'dash_' || base || '_upd',
                   dash_fold_sql(base, 'old_rows', -1) || dash_fold_sql(base, 'new_rows', 1) || dash_cleanup_sql(base));
  END LOOP;
  EXECUTE format(template, 'dash_stream_batches_ins', dash_fold_sql('stream_batches', 'new_rows', 1) || $s$
      -- 5 s buckets serve the 5 and 15 minute charts only; prune them now and then.
      IF (SELECT max(batch_id) FROM new_rows) % 500 = 0 THEN
        DELETE FROM dash_timeline WHERE res_s = 5 AND bucket < now() - interval '2 days';
        DELETE FROM dash_latency WHERE res_s = 5 AND bucket < now() - interval '2 days';
      END IF;
      PERFORM pg_notify('ecomstream_batches',
        (SELECT json_build_object('streamId', max(stream_id), 'batchId', max(batch_id), 'batches', count(*))::text FROM new_rows));$s$);
END
$build$;

-- TRUNCATE of a base table empties the aggregates it feeds (tests and resets do this).
CREATE OR REPLACE FUNCTION dash_reset() RETURNS trigger
LANGUAGE plpgsql AS
$fn$
BEGIN
  PERFORM pg_advisory_xact_lock(727275);
  IF TG_TABLE_NAME = 'user_events' THEN
    DELETE FROM dash_event_types; DELETE FROM dash_categories; DELETE FROM dash_devices; DELETE FROM dash_products;
  ELSIF TG_TABLE_NAME = 'rejected_events' THEN
    DELETE FROM dash_rejects;
  ELSIF TG_TABLE_NAME = 'stream_batches' THEN
    DELETE FROM dash_streams; DELETE FROM dash_timeline; DELETE FROM dash_latency;
  END IF;
  RETURN NULL;
END
$fn$;

-- Recompute every aggregate from the base tables, with the very statements the triggers run (over the
-- whole table instead of a transition table): the backfill, and a repair tool. SHARE locks keep
-- writers out meanwhile, so nothing is counted twice or missed.
CREATE OR REPLACE FUNCTION dash_rebuild() RETURNS void
LANGUAGE plpgsql AS
$fn$
BEGIN
  LOCK TABLE user_events, rejected_events, stream_batches IN SHARE MODE;
  PERFORM pg_advisory_xact_lock(727275);
  DELETE FROM dash_event_types; DELETE FROM dash_categories; DELETE FROM dash_devices; DELETE FROM dash_products;
  DELETE FROM dash_rejects; DELETE FROM dash_streams; DELETE FROM dash_timeline; DELETE FROM dash_latency;
  EXECUTE dash_fold_sql('user_events', 'user_events', 1);
  EXECUTE dash_fold_sql('rejected_events', 'rejected_events', 1);
  EXECUTE dash_fold_sql('stream_batches', 'stream_batches', 1);
  INSERT INTO dash_state (id, built_at) VALUES (1, now()) ON CONFLICT (id) DO UPDATE SET built_at = excluded.built_at;
END
$fn$;

-- CREATE OR REPLACE TRIGGER (PostgreSQL 14+) rather than DROP + CREATE: as idempotent, and it does not
-- take DROP TRIGGER's ACCESS EXCLUSIVE lock, which would stall the dashboard's reads on every migrate.
CREATE OR REPLACE TRIGGER dash_user_events_ins AFTER INSERT ON user_events
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION dash_user_events_ins();
CREATE OR REPLACE TRIGGER dash_user_events_del AFTER DELETE ON user_events
  REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION dash_user_events_del();
CREATE OR REPLACE TRIGGER dash_user_events_upd AFTER UPDATE ON user_events
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION dash_user_events_upd();
CREATE OR REPLACE TRIGGER dash_user_events_trunc AFTER TRUNCATE ON user_events
  FOR EACH STATEMENT EXECUTE FUNCTION dash_reset();

CREATE OR REPLACE TRIGGER dash_rejected_events_ins AFTER INSERT ON rejected_events
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION dash_rejected_events_ins();
CREATE OR REPLACE TRIGGER dash_rejected_events_del AFTER DELETE ON rejected_events
  REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION dash_rejected_events_del();
CREATE OR REPLACE TRIGGER dash_rejected_events_upd AFTER UPDATE ON rejected_events
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION dash_rejected_events_upd();
CREATE OR REPLACE TRIGGER dash_rejected_events_trunc AFTER TRUNCATE ON rejected_events
  FOR EACH STATEMENT EXECUTE FUNCTION dash_reset();

CREATE OR REPLACE TRIGGER dash_stream_batches_ins AFTER INSERT ON stream_batches
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION dash_stream_batches_ins();
CREATE OR REPLACE TRIGGER dash_stream_batches_trunc AFTER TRUNCATE ON stream_batches
  FOR EACH STATEMENT EXECUTE FUNCTION dash_reset();

-- Backfill once: the first time this section meets existing data (or after the aggregates were dropped),
-- build them from the base tables. From then on the triggers keep them current.
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM dash_state WHERE id = 1) THEN
    PERFORM dash_rebuild();
  END IF;
END
$$;

-- The dashboard's role (config db.readonlyUser / readonlyPassword): it can read, nothing else. Roles
-- belong to the server, not the database, so two databases migrating at once may race to create it.
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'dashboard_reader') THEN
    BEGIN
      CREATE ROLE dashboard_reader LOGIN PASSWORD 'dashboard_reader';
    EXCEPTION WHEN duplicate_object OR unique_violation THEN
      NULL;
    END;
  END IF;
  EXECUTE format('GRANT CONNECT ON DATABASE %I TO dashboard_reader', current_database());
END
$$;
-- Belt and braces: even a write grant given by mistake later would meet a read-only session.
ALTER ROLE dashboard_reader SET default_transaction_read_only = on;
ALTER ROLE dashboard_reader SET statement_timeout = '5s';
GRANT USAGE ON SCHEMA public TO dashboard_reader;
GRANT SELECT ON ALL TABLES IN SCHEMA public TO dashboard_reader;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO dashboard_reader;

-- schema_migrations: this migration records itself (Docker's initdb runs the files without `ecomstream migrate`).
INSERT INTO schema_migrations (version, name) VALUES (2, 'initial') ON CONFLICT (version) DO NOTHING;
