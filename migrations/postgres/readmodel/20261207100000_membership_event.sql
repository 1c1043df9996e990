-- The change log covers membership applications: `membership_event` has one row per event of
-- an application's five streams, with the columns of `donation_event` (who — the actor's kind
-- and id —, which event, when), written by the projector in the batch that folds the event.
-- The view `change_log` answers "who did what" across contexts in one place: one UNION ALL arm
-- per context's table, `context` naming it. A further context (address changes) adds its
-- table and one arm (CREATE OR REPLACE VIEW change_log with the extra arm).
-- Read models that projected memberships before this migration have no rows here for them
-- until `ledger rebuild` (verify reports them as missing).

CREATE TABLE membership_event (
    membership_id  BIGINT  NOT NULL CHECK (membership_id >= 0),
    position       BIGINT  NOT NULL CHECK (position >= 0),
    stream         TEXT    NOT NULL,
    event_type     TEXT    NOT NULL,
    actor_kind     TEXT    NOT NULL,
    actor_id       TEXT    NOT NULL,
    occurred_at    TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (membership_id, position)
);

CREATE INDEX membership_event_by_position ON membership_event (position);

CREATE VIEW change_log AS
SELECT
    CAST('donation' AS TEXT) AS context,
    d.donation_id AS subject_id,
    d.position AS position,
    d.stream AS stream,
    d.event_type AS event_type,
    d.actor_kind AS actor_kind,
    d.actor_id AS actor_id,
    d.occurred_at AS occurred_at
FROM donation_event AS d
UNION ALL
SELECT
    CAST('membership' AS TEXT) AS context,
    m.membership_id AS subject_id,
    m.position AS position,
    m.stream AS stream,
    m.event_type AS event_type,
    m.actor_kind AS actor_kind,
    m.actor_id AS actor_id,
    m.occurred_at AS occurred_at
FROM membership_event AS m;
