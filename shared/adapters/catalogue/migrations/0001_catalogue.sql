-- The auxip catalogue. Timestamps are timestamptz (UTC); open-ended validity is stored as
-- 9999-12-31 23:59:59.999999+00 so range comparisons need no special case.
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE EXTENSION IF NOT EXISTS btree_gist;

CREATE TABLE products (
    id                uuid PRIMARY KEY,
    -- The product as it arrived, without container suffix (X.SAFE, X.EOF): the identity
    -- that makes a SAFE folder and its zip the same product.
    logical_name      text NOT NULL UNIQUE,
    -- What clients see and download (X.SAFE.zip, X.EOF): set when packaged.
    name              text UNIQUE,
    status            text NOT NULL DEFAULT 'ingested'
                      CHECK (status IN ('ingested', 'packaged', 'published', 'evicted')),
    product_type      text NOT NULL,
    platform_short_name text NOT NULL DEFAULT 'SENTINEL-1',
    platform_serial   text NOT NULL DEFAULT '',   -- '' = all units (S1_)
    -- Content fingerprint: MD5 of the file, or of manifest.safe for SAFE products (the
    -- manifest lists every data object's MD5, so it fixes the whole content).
    fingerprint       text NOT NULL,
    layout            text NOT NULL CHECK (layout IN ('file', 'safe-folder', 'safe-archive')),
    archive_key       text NOT NULL,              -- what was ingested, in the archive bucket
    distribution_key  text,                       -- what $value serves
    content_type      text NOT NULL DEFAULT 'application/octet-stream',
    content_length    bigint NOT NULL DEFAULT 0 CHECK (content_length >= 0),
    checksums         jsonb NOT NULL DEFAULT '[]'::jsonb,
    content_start     timestamptz NOT NULL,
    content_end       timestamptz NOT NULL,
    origin_date       timestamptz NOT NULL,       -- reached the interface point
    ingestion_date    timestamptz NOT NULL DEFAULT now(),
    publication_date  timestamptz,
    modification_date timestamptz NOT NULL DEFAULT now(),
    eviction_date     timestamptz,
    online            boolean NOT NULL DEFAULT false,
    attributes        jsonb NOT NULL DEFAULT '{}'::jsonb,
    CHECK (content_start <= content_end)
);

-- Name matching: contains/startswith/endswith compile to LIKE, served by trigrams.
CREATE INDEX products_name_trgm ON products USING gin (name gin_trgm_ops);
-- Published listing by publication date (the pollers' moving window).
CREATE INDEX products_publication ON products (publication_date, id) WHERE status = 'published';
-- "Which file of this type is valid at T": type + validity range overlap.
CREATE INDEX products_type_validity ON products
    USING gist (product_type, platform_serial, tstzrange(content_start, content_end, '[]'))
    WHERE status = 'published';
CREATE INDEX products_type_start ON products (product_type, platform_serial, content_start)
    WHERE status = 'published';
CREATE INDEX products_attributes ON products USING gin (attributes jsonb_path_ops);
CREATE INDEX products_eviction ON products (eviction_date) WHERE online;

CREATE TABLE rejections (
    id               bigserial PRIMARY KEY,
    name             text NOT NULL,
    source_bucket    text NOT NULL,
    source_key       text NOT NULL,
    quarantine_key   text,
    reason           text NOT NULL,
    detail           text NOT NULL,
    fingerprint      text,
    event_id         text,
    rejected_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX rejections_reason ON rejections (reason, rejected_at);
CREATE INDEX rejections_name ON rejections (name);

-- Outbox and replay source: every emitted event, written with the change it announces.
CREATE TABLE event_journal (
    id           text PRIMARY KEY,          -- CloudEvent id
    type         text NOT NULL,
    source       text NOT NULL,
    subject      text,
    time         timestamptz NOT NULL,
    data         jsonb NOT NULL,
    extensions   jsonb NOT NULL DEFAULT '{}'::jsonb,
    recorded_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    sent_at      timestamptz,
    send_attempts integer NOT NULL DEFAULT 0,
    last_error   text
);
CREATE INDEX event_journal_unsent ON event_journal (recorded_at) WHERE sent_at IS NULL;
CREATE INDEX event_journal_type_time ON event_journal (type, time);
CREATE INDEX event_journal_subject ON event_journal (subject);

CREATE TABLE dead_letters (
    id           bigserial PRIMARY KEY,
    event_id     text NOT NULL,
    type         text NOT NULL,
    subject      text,
    event        jsonb NOT NULL,             -- the whole CloudEvent, structured form
    subscriber   text,
    error        text,
    attempts     integer,
    received_at  timestamptz NOT NULL DEFAULT now(),
    replayed_at  timestamptz
);
CREATE INDEX dead_letters_received ON dead_letters (received_at);

CREATE TABLE subscriptions (
    id                      uuid PRIMARY KEY,
    owner                   text NOT NULL,
    filter_param            text NOT NULL DEFAULT '',
    notification_endpoint   text NOT NULL,
    notification_username   text,
    notification_password   text,
    status                  text NOT NULL DEFAULT 'running'
                            CHECK (status IN ('running', 'paused', 'cancelled')),
    subscription_event      text NOT NULL DEFAULT 'created'
                            CHECK (subscription_event IN ('created', 'deleted')),
    submission_date         timestamptz NOT NULL DEFAULT now(),
    last_notification_date  timestamptz
);
CREATE INDEX subscriptions_owner ON subscriptions (owner);

CREATE TABLE notifications (
    id               bigserial PRIMARY KEY,
    subscription_id  uuid NOT NULL REFERENCES subscriptions (id) ON DELETE CASCADE,
    product_id       uuid NOT NULL,
    attempt          integer NOT NULL,
    status           text NOT NULL CHECK (status IN ('delivered', 'failed')),
    http_status      integer,
    error            text,
    attempted_at     timestamptz NOT NULL DEFAULT now()
);
-- At most one successful delivery per subscription and product.
CREATE UNIQUE INDEX notifications_delivered_once ON notifications (subscription_id, product_id)
    WHERE status = 'delivered';

CREATE TABLE sources (
    name        text PRIMARY KEY,
    kind        text NOT NULL,
    config      jsonb NOT NULL,
    state       jsonb NOT NULL DEFAULT '{}'::jsonb,
    enabled     boolean NOT NULL DEFAULT true,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE seen_sources (
    source      text NOT NULL,
    item_key    text NOT NULL,
    checksum    text,
    seen_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source, item_key)
);

CREATE TABLE routes (
    name        text PRIMARY KEY,
    rule        jsonb NOT NULL,
    target      jsonb NOT NULL,
    enabled     boolean NOT NULL DEFAULT true,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE transfers (
    id           uuid PRIMARY KEY,
    route        text NOT NULL,
    product_id   uuid NOT NULL,
    target       text NOT NULL,
    status       text NOT NULL CHECK (status IN ('pending', 'completed', 'failed')),
    attempts     integer NOT NULL DEFAULT 0,
    bytes        bigint,
    duration_ms  integer,
    error        text,
    started_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz,
    UNIQUE (route, product_id)
);

CREATE TABLE audit_log (
    id              bigserial PRIMARY KEY,
    at              timestamptz NOT NULL DEFAULT now(),
    actor           text NOT NULL,
    action          text NOT NULL,
    product_id      uuid,
    subscription_id uuid,
    client_address  text,
    outcome         text NOT NULL,
    bytes_sent      bigint,
    range_spec      text,
    details         jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX audit_log_at ON audit_log (at);
CREATE INDEX audit_log_actor ON audit_log (actor, at);
