-- The last PublicationDate given (shared/adapters/catalogue/publication_clock.py). A
-- publishing transaction takes its date from this row and holds the row's lock until it
-- commits, so products become visible in PublicationDate order: a client polling
-- `PublicationDate gt <the last one it saw>` never misses a product committed after it
-- with an earlier date.
CREATE TABLE publication_clock (
    id   boolean PRIMARY KEY DEFAULT true CHECK (id),  -- one row
    last timestamptz NOT NULL
);
INSERT INTO publication_clock (last)
    SELECT coalesce(max(publication_date), '-infinity') FROM products;
