-- Which envelope an event carries: 0 the ledger's own (JSON metadata of `store::Metadata`,
-- protobuf payload); 1 and 2 a KurrentDB client's metadata bytes as written, with a binary (1)
-- or JSON (2) payload. Written through the ledger's KurrentDB port only.
ALTER TABLE events ADD COLUMN envelope INTEGER NOT NULL DEFAULT 0;
