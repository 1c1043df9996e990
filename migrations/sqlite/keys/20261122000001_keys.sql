-- Per-donation data keys (crypto-shredding). Kept in their own file, never in the log.
CREATE TABLE IF NOT EXISTS data_key (
    key_id      INTEGER PRIMARY KEY,    -- the donation id
    key         BLOB    NOT NULL,       -- 32 random bytes
    created_at  INTEGER NOT NULL        -- unix seconds
);

-- Keys that were destroyed: never created again for the same donation.
CREATE TABLE IF NOT EXISTS destroyed_key (
    key_id       INTEGER PRIMARY KEY,
    destroyed_at INTEGER NOT NULL
);
