-- A product's journalled events by its id, so a lost catalogue row can be rebuilt from
-- them (shared/adapters/catalogue/restore.py) without a scan of the whole journal.
CREATE INDEX event_journal_product ON event_journal ((data ->> 'product_id'))
    WHERE data ? 'product_id';
