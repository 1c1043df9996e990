-- Every change of an outgoing or incoming row takes the next revision, so the status mirror
-- (`src/civishare/mirror.rs`) copies into the read model exactly what changed since its
-- checkpoint there. SQLite has one writer at a time, so revisions are committed in order.
-- Rows of a removed peering leave the queue (they are never delivered); the mirror shows them
-- as `dropped`, from `civishare_outbox_dropped`.

CREATE TABLE civishare_revision (
    id     INTEGER PRIMARY KEY CHECK (id = 1),
    value  INTEGER NOT NULL
);

ALTER TABLE civishare_outbox ADD COLUMN revision INTEGER NOT NULL DEFAULT 0;
ALTER TABLE civishare_inbox ADD COLUMN revision INTEGER NOT NULL DEFAULT 0;

-- Rows from before this migration: numbered once, outgoing first.
UPDATE civishare_outbox SET revision = seq;
UPDATE civishare_inbox
SET revision = seq + COALESCE((SELECT MAX(seq) FROM civishare_outbox), 0);
INSERT INTO civishare_revision (id, value)
VALUES (
    1,
    MAX(
        COALESCE((SELECT MAX(revision) FROM civishare_outbox), 0),
        COALESCE((SELECT MAX(revision) FROM civishare_inbox), 0)
    )
);

CREATE INDEX civishare_outbox_revision ON civishare_outbox (revision);
CREATE INDEX civishare_inbox_revision ON civishare_inbox (revision);

-- A queued row deleted with its peering: its last state, and the revision of the deletion.
CREATE TABLE civishare_outbox_dropped (
    seq              INTEGER PRIMARY KEY,
    peer             TEXT    NOT NULL,
    position         INTEGER NOT NULL,
    event_id         TEXT    NOT NULL,
    change_type      TEXT    NOT NULL,
    entity           TEXT    NOT NULL,
    entity_reference TEXT    NOT NULL,
    attempts         INTEGER NOT NULL,
    last_error       TEXT,
    message_id       TEXT,
    peer_status      TEXT,
    peer_reason      TEXT,
    queued_at        TEXT    NOT NULL,
    sent_at          TEXT,
    acknowledged_at  TEXT,
    revision         INTEGER NOT NULL
);
CREATE INDEX civishare_outbox_dropped_revision ON civishare_outbox_dropped (revision);

CREATE TRIGGER civishare_outbox_inserted AFTER INSERT ON civishare_outbox
BEGIN
    UPDATE civishare_revision SET value = value + 1 WHERE id = 1;
    UPDATE civishare_outbox SET revision = (SELECT value FROM civishare_revision WHERE id = 1)
    WHERE seq = NEW.seq;
END;

CREATE TRIGGER civishare_outbox_updated
AFTER UPDATE OF status, attempts, last_error, message_id, peer_status, peer_reason, sent_at,
    acknowledged_at ON civishare_outbox
BEGIN
    UPDATE civishare_revision SET value = value + 1 WHERE id = 1;
    UPDATE civishare_outbox SET revision = (SELECT value FROM civishare_revision WHERE id = 1)
    WHERE seq = NEW.seq;
END;

-- The peering row still exists when its queue is deleted (`remove_peering` deletes the queue
-- first), so the dropped row keeps the peer's name.
CREATE TRIGGER civishare_outbox_deleted AFTER DELETE ON civishare_outbox
BEGIN
    UPDATE civishare_revision SET value = value + 1 WHERE id = 1;
    INSERT OR REPLACE INTO civishare_outbox_dropped (
        seq, peer, position, event_id, change_type, entity, entity_reference, attempts,
        last_error, message_id, peer_status, peer_reason, queued_at, sent_at, acknowledged_at,
        revision
    )
    VALUES (
        OLD.seq,
        COALESCE((SELECT node_name FROM civishare_peering WHERE id = OLD.peering_id), ''),
        OLD.position, OLD.event_id, OLD.change_type, OLD.entity, OLD.entity_reference,
        OLD.attempts, OLD.last_error, OLD.message_id, OLD.peer_status, OLD.peer_reason,
        OLD.queued_at, OLD.sent_at, OLD.acknowledged_at,
        (SELECT value FROM civishare_revision WHERE id = 1)
    );
END;

CREATE TRIGGER civishare_inbox_inserted AFTER INSERT ON civishare_inbox
BEGIN
    UPDATE civishare_revision SET value = value + 1 WHERE id = 1;
    UPDATE civishare_inbox SET revision = (SELECT value FROM civishare_revision WHERE id = 1)
    WHERE seq = NEW.seq;
END;

CREATE TRIGGER civishare_inbox_updated
AFTER UPDATE OF status, reason, local_reference ON civishare_inbox
BEGIN
    UPDATE civishare_revision SET value = value + 1 WHERE id = 1;
    UPDATE civishare_inbox SET revision = (SELECT value FROM civishare_revision WHERE id = 1)
    WHERE seq = NEW.seq;
END;
