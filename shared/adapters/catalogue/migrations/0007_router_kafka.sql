-- The router's KafkaSources (devstack/router/kafka_consumer.py): a record neither its sink nor
-- its dead-letter sink accepted is kept here as a failed delivery, so that committing its
-- offset loses nothing (operators list it with --failed and send it again with --redeliver).
ALTER TABLE router.events DROP CONSTRAINT events_origin_check;
ALTER TABLE router.events ADD CONSTRAINT events_origin_check
    CHECK (origin IN ('ingress', 'reply', 'ping', 'kafka'));
