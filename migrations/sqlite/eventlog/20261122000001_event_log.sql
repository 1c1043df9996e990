-- The embedded event log: one row per event, positions in global commit order.
CREATE TABLE IF NOT EXISTS events (
    position      INTEGER PRIMARY KEY,          -- global $all position, from 1, commit order
    event_id      BLOB    NOT NULL UNIQUE,      -- 16-byte UUID, the idempotency key
    stream_name   TEXT    NOT NULL,
    category      TEXT    NOT NULL,             -- stream name up to the first '-'
    revision      INTEGER NOT NULL,             -- per-stream revision, from 0
    event_type    TEXT    NOT NULL,             -- explicit, versioned, e.g. DonationCreated.v2
    payload       BLOB    NOT NULL,             -- protobuf
    metadata      BLOB    NOT NULL,             -- JSON envelope metadata (KurrentDB style)
    recorded_at   INTEGER NOT NULL,             -- unix micros, when the log committed it
    UNIQUE (stream_name, revision)
);

CREATE INDEX IF NOT EXISTS events_by_category ON events (category, position);
