-- CiviShare peering (docs/civishare.md): the local node, peerings with their sealed secrets,
-- the outgoing queue with its projector checkpoint, and the incoming memory and statuses.

CREATE TABLE civishare_node (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    name  TEXT    NOT NULL
);

-- One remote node and the peering with it. The secret is sealed (XChaCha20-Poly1305) with key
-- `PEERING_KEY_BASE + id` of the key store; removing a peering destroys that key.
CREATE TABLE civishare_peering (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    node_name      TEXT    NOT NULL UNIQUE,
    endpoint       TEXT    NOT NULL,
    secret_nonce   BLOB    NOT NULL,
    secret_sealed  BLOB    NOT NULL,
    outgoing       TEXT    NOT NULL,
    incoming       TEXT    NOT NULL,
    created_at     TEXT    NOT NULL
);

-- The next log position the outgoing projector reads.
CREATE TABLE civishare_checkpoint (
    id        INTEGER PRIMARY KEY CHECK (id = 1),
    position  INTEGER NOT NULL
);

-- One row per change and peer. No personal data: the message is built from the log at
-- delivery time. status: queued, sent, acknowledged, failed.
CREATE TABLE civishare_outbox (
    seq              INTEGER PRIMARY KEY AUTOINCREMENT,
    peering_id       INTEGER NOT NULL,
    position         INTEGER NOT NULL,
    event_id         TEXT    NOT NULL,
    change_type      TEXT    NOT NULL,
    entity           TEXT    NOT NULL,
    entity_reference TEXT    NOT NULL,
    loop_detection   TEXT    NOT NULL,
    status           TEXT    NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    last_error       TEXT,
    message_id       TEXT,
    peer_status      TEXT,
    peer_reason      TEXT,
    queued_at        TEXT    NOT NULL,
    sent_at          TEXT,
    acknowledged_at  TEXT,
    UNIQUE (peering_id, event_id)
);
CREATE INDEX civishare_outbox_pending ON civishare_outbox (peering_id, status, seq);

-- Message ids accepted, kept for twice the clock window.
CREATE TABLE civishare_message_seen (
    id           TEXT    PRIMARY KEY,
    sender       TEXT    NOT NULL,
    received_at  INTEGER NOT NULL
);

-- Origin signatures of processed changes, kept for the retention; the correlation id of the
-- request that applied it lets the outgoing projector forward it with its loop list. state:
-- `applying` until the change is applied (a leftover of a crash is applied again: the intake's
-- idempotency key is derived from the origin), then `done`.
CREATE TABLE civishare_change_seen (
    origin          TEXT    PRIMARY KEY,
    state           TEXT    NOT NULL,
    sender          TEXT    NOT NULL,
    loop_detection  TEXT    NOT NULL,
    correlation_id  TEXT,
    seen_at         INTEGER NOT NULL
);
CREATE INDEX civishare_change_seen_correlation ON civishare_change_seen (correlation_id);

-- What became of every change received. status: applied, ignored_loop, refused.
CREATE TABLE civishare_inbox (
    seq              INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id       TEXT    NOT NULL,
    sender           TEXT    NOT NULL,
    change_index     INTEGER NOT NULL,
    change_type      TEXT    NOT NULL,
    entity           TEXT    NOT NULL,
    entity_reference TEXT    NOT NULL,
    origin           TEXT    NOT NULL,
    status           TEXT    NOT NULL,
    reason           TEXT,
    local_reference  TEXT,
    received_at      TEXT    NOT NULL
);
CREATE INDEX civishare_inbox_reference ON civishare_inbox (sender, entity, entity_reference);
