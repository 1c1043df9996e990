-- CiviShare's statuses in the read model (issue 20, docs/civishare.md "Statuses"): what
-- became of every change this node sent (`civishare_outgoing`) and received
-- (`civishare_incoming`), copied from the node's `civishare.sqlite` by the status mirror
-- that `ledger serve` runs, with its checkpoint (`civishare_status_checkpoint`) in the same
-- transaction. Rows are keyed by the local node's name and the queue's own sequence number,
-- so several nodes may share one read model. Not folded from the log: `verify` leaves these
-- tables out, and a `rebuild` empties them until the mirror has copied them again.
-- No personal data: a change is named by its type, entity and reference.

CREATE TABLE civishare_outgoing (
    node              TEXT NOT NULL,
    seq               INTEGER NOT NULL CHECK (seq >= 0),
    peer              TEXT NOT NULL,
    log_position      INTEGER NOT NULL CHECK (log_position >= 0),
    event_id          TEXT NOT NULL,
    change_type       TEXT NOT NULL,
    entity            TEXT NOT NULL,
    entity_reference  TEXT NOT NULL,
    status            TEXT NOT NULL,
    attempts          INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    last_error        TEXT NOT NULL DEFAULT '',
    message_id        TEXT NOT NULL DEFAULT '',
    peer_status       TEXT NOT NULL DEFAULT '',
    peer_reason       TEXT NOT NULL DEFAULT '',
    queued_at         TEXT NOT NULL,
    sent_at           TEXT NULL,
    acknowledged_at   TEXT NULL,
    PRIMARY KEY (node, seq)
);

CREATE INDEX civishare_outgoing_by_peer_status ON civishare_outgoing (peer, status);

CREATE TABLE civishare_incoming (
    node              TEXT NOT NULL,
    seq               INTEGER NOT NULL CHECK (seq >= 0),
    sender            TEXT NOT NULL,
    message_id        TEXT NOT NULL,
    change_index      INTEGER NOT NULL CHECK (change_index >= 0),
    change_type       TEXT NOT NULL,
    entity            TEXT NOT NULL,
    entity_reference  TEXT NOT NULL,
    status            TEXT NOT NULL,
    reason            TEXT NOT NULL DEFAULT '',
    local_reference   TEXT NOT NULL DEFAULT '',
    received_at       TEXT NOT NULL,
    PRIMARY KEY (node, seq)
);

CREATE INDEX civishare_incoming_by_sender_status ON civishare_incoming (sender, status);

CREATE TABLE civishare_status_checkpoint (
    node        TEXT NOT NULL PRIMARY KEY,
    revision    INTEGER NOT NULL CHECK (revision >= 0),
    updated_at  TEXT NOT NULL
);
