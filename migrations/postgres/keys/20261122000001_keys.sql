-- Per-donation data keys (crypto-shredding). Kept apart from the log and the read models.
CREATE TABLE IF NOT EXISTS data_key (
    key_id      BIGINT PRIMARY KEY CHECK (key_id >= 0),
    key         BYTEA  NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS destroyed_key (
    key_id       BIGINT PRIMARY KEY CHECK (key_id >= 0),
    destroyed_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
