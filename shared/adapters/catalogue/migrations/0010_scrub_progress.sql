-- Where the scheduled scrub (the verify function) goes on from. Each tick checks the next
-- slice of the archive's key space, a bounded number of the catalogue's objects, and moves
-- this on; past the last key the next pass begins (shared/pipeline/integrity/scrub.py).
CREATE TABLE scrub_progress (
    id           boolean PRIMARY KEY DEFAULT true CHECK (id),  -- one row
    after_key    text NOT NULL,       -- the last key checked; '' = a pass starts at the first
    pass_started timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL DEFAULT now()
);

-- A slice reads the products' keys in S3's listing order (bytes: the "C" collation) from a
-- key on: index range scans, not a sort of the whole catalogue at each tick.
CREATE INDEX products_archive_key_c ON products ((archive_key COLLATE "C"));
CREATE INDEX products_distribution_key_c ON products ((distribution_key COLLATE "C"))
    WHERE distribution_key IS NOT NULL;
