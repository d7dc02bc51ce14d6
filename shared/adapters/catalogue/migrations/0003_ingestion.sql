-- SAFE products arriving as folders of objects: a folder seen but not yet complete waits
-- here until its last object arrives, or until the sweep quarantines it as incomplete.
CREATE TABLE pending_folders (
    bucket        text NOT NULL,
    prefix        text NOT NULL,
    logical_name  text NOT NULL,
    first_seen    timestamptz NOT NULL DEFAULT now(),
    last_seen     timestamptz NOT NULL DEFAULT now(),
    missing       jsonb NOT NULL DEFAULT '[]'::jsonb,
    PRIMARY KEY (bucket, prefix)
);
CREATE INDEX pending_folders_last_seen ON pending_folders (last_seen);
