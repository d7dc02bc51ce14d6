-- Routing: what the pollers fetched and from where, and the retry schedule of transfers.

-- A fetched item remembers what it became in the inbox: the arrival name (X.EOF, X.SAFE,
-- X.SAFE.zip) lets route tell a product's origin (`poll:<source>` or `inbox`) without a
-- column in products, and the event id ties the row to its file.arrived.
ALTER TABLE seen_sources
    ADD COLUMN product_name text,
    ADD COLUMN inbox_key    text,
    ADD COLUMN size         bigint,
    ADD COLUMN event_id     text;
CREATE INDEX seen_sources_product_name ON seen_sources (product_name);

-- A transfer still pending is retried by the route sweep once next_attempt_at has passed;
-- `reason` is the machine-readable code of the last error (checksum_mismatch, ...).
ALTER TABLE transfers
    ADD COLUMN next_attempt_at timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN checksum        text,
    ADD COLUMN reason          text,
    ADD COLUMN updated_at      timestamptz NOT NULL DEFAULT now();
CREATE INDEX transfers_due ON transfers (next_attempt_at) WHERE status = 'pending';
CREATE INDEX transfers_product ON transfers (product_id);
CREATE INDEX transfers_recent ON transfers (updated_at);
