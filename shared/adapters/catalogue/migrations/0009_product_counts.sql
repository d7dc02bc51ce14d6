-- Exact totals of published products per type, kept by triggers in the same transaction as
-- the change of the products row, so that `$count` of all products or of one productType
-- reads a few rows instead of counting up to a million (shared/odata/products_query.py).
--
-- Exact under concurrency: each delta commits or rolls back with the row change that made
-- it, and a reader's snapshot sees both or neither. A single row per type would serialise
-- every publication of that type on its lock until commit; the deltas go to one of 16
-- shards chosen by the backend, so concurrent sessions (a pool per function) rarely meet.
-- A reader sums the shards (at most 16 rows per type). A shard may go negative (a product
-- published by one session and evicted by another): only the sum means anything.
CREATE TABLE product_counts (
    product_type text NOT NULL,
    shard        smallint NOT NULL,
    published    bigint NOT NULL,
    PRIMARY KEY (product_type, shard)
);

CREATE FUNCTION product_counts_add(kind text, delta bigint) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO product_counts (product_type, shard, published)
    VALUES (kind, pg_backend_pid() % 16, delta)
    ON CONFLICT (product_type, shard)
    DO UPDATE SET published = product_counts.published + EXCLUDED.published
$$;

-- Inserts and deletes per statement (a bulk load counts once per type, in type order so
-- that two sessions lock shared rows in the same order); updates per row, and only those
-- that change the status or the type, so other updates of products cost nothing.
CREATE FUNCTION product_counts_inserted() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM product_counts_add(product_type, n)
    FROM (SELECT product_type, count(*) AS n FROM new_rows WHERE status = 'published'
          GROUP BY product_type ORDER BY product_type) AS t;
    RETURN NULL;
END $$;

CREATE FUNCTION product_counts_deleted() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM product_counts_add(product_type, -n)
    FROM (SELECT product_type, count(*) AS n FROM old_rows WHERE status = 'published'
          GROUP BY product_type ORDER BY product_type) AS t;
    RETURN NULL;
END $$;

CREATE FUNCTION product_counts_updated() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.status = 'published' THEN
        PERFORM product_counts_add(OLD.product_type, -1);
    END IF;
    IF NEW.status = 'published' THEN
        PERFORM product_counts_add(NEW.product_type, 1);
    END IF;
    RETURN NULL;
END $$;

CREATE FUNCTION product_counts_truncated() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM product_counts;
    RETURN NULL;
END $$;

CREATE TRIGGER product_counts_insert AFTER INSERT ON products
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION product_counts_inserted();
CREATE TRIGGER product_counts_delete AFTER DELETE ON products
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION product_counts_deleted();
CREATE TRIGGER product_counts_update AFTER UPDATE OF status, product_type ON products
    FOR EACH ROW
    WHEN ((OLD.status = 'published' OR NEW.status = 'published')
          AND (OLD.status IS DISTINCT FROM NEW.status
               OR OLD.product_type IS DISTINCT FROM NEW.product_type))
    EXECUTE FUNCTION product_counts_updated();
CREATE TRIGGER product_counts_truncate AFTER TRUNCATE ON products
    FOR EACH STATEMENT EXECUTE FUNCTION product_counts_truncated();

-- What is there now, counted once (shard 0); the migration holds the catalogue's advisory
-- lock, and the triggers above already count whatever commits after this snapshot.
LOCK TABLE products IN SHARE MODE;
INSERT INTO product_counts (product_type, shard, published)
SELECT product_type, 0, count(*) FROM products WHERE status = 'published'
GROUP BY product_type;
