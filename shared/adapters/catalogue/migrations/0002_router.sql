-- The local event router (devstack/router): the durable part of the Broker stand-in.
-- An event and one delivery per matching Trigger are written in one transaction before the
-- ingress answers 202; dispatchers claim due deliveries with FOR UPDATE SKIP LOCKED.
CREATE SCHEMA IF NOT EXISTS router;

CREATE TABLE router.events (
    seq          bigserial PRIMARY KEY,
    broker       text NOT NULL,               -- namespace/name the event was sent to
    event_id     text NOT NULL,               -- CloudEvent id (with source: its identity)
    source       text NOT NULL,
    type         text NOT NULL,
    subject      text,
    attributes   jsonb NOT NULL,              -- every context attribute, as strings
    data         bytea,                       -- the data exactly as received
    origin       text NOT NULL CHECK (origin IN ('ingress', 'reply', 'ping')),
    received_at  timestamptz NOT NULL DEFAULT now()
);
-- Not unique: Knative delivers at least once, a re-sent event is routed again.
CREATE INDEX events_identity ON router.events (source, event_id);
CREATE INDEX events_received ON router.events (received_at);

CREATE TABLE router.deliveries (
    id               bigserial PRIMARY KEY,
    event_seq        bigint NOT NULL REFERENCES router.events (seq) ON DELETE CASCADE,
    trigger          text NOT NULL,           -- namespace/name, or pingsource:namespace/name
    subscriber       text NOT NULL,           -- URL when routed (knativeerrordest)
    stage            text NOT NULL DEFAULT 'subscriber'
                     CHECK (stage IN ('subscriber', 'deadletter')),
    status           text NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'delivered', 'dead', 'failed')),
    attempts         integer NOT NULL DEFAULT 0,   -- started in the current stage
    -- When the next attempt is due; while claimed, when the claim (lease) expires.
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    claimed_by       text,                    -- router instance holding the lease
    last_status      integer,                 -- HTTP status of the latest attempt
    last_error       text,
    -- The subscriber's final failure, carried to the dead-letter sink as knativeerror*.
    error_code       integer,
    error_data       bytea,
    error_extensions jsonb,
    created_at       timestamptz NOT NULL DEFAULT now(),
    finished_at      timestamptz
);
CREATE INDEX deliveries_due ON router.deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX deliveries_claimed ON router.deliveries (claimed_by) WHERE claimed_by IS NOT NULL;
CREATE INDEX deliveries_event ON router.deliveries (event_seq);
CREATE INDEX deliveries_unsuccessful ON router.deliveries (status, id)
    WHERE status IN ('dead', 'failed');

-- One row per PingSource tick emitted, so restarts and concurrent routers emit each once.
CREATE TABLE router.ping_ticks (
    source   text NOT NULL,                   -- namespace/name of the PingSource
    tick     timestamptz NOT NULL,
    PRIMARY KEY (source, tick)
);
