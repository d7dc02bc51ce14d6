-- The audit trail as a hash chain (shared/adapters/catalogue/audit.py): each row written from
-- now on has its place in one chain (chain_seq 1, 2, 3, ... with no gap), the hash of the row
-- before it (prev_hash) and its own hash (row_hash: SHA-256 over every column, its place and
-- prev_hash). `auxip audit verify` walks the chain and names the first row altered, removed
-- or reordered. Rows written before this migration keep chain_seq NULL: they are outside the
-- chain (verify counts them); the chain's first row has prev_hash = 64 zeros (its genesis).
ALTER TABLE audit_log ADD COLUMN chain_seq bigint;
ALTER TABLE audit_log ADD COLUMN prev_hash text;
ALTER TABLE audit_log ADD COLUMN row_hash text;
-- Unique: two writers can never take the same place, even if one skipped the lock.
CREATE UNIQUE INDEX audit_log_chain_seq ON audit_log (chain_seq);
