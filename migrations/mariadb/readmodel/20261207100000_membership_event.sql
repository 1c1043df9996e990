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
    stream         VARCHAR(255) NOT NULL,
    event_type     VARCHAR(255) NOT NULL,
    actor_kind     VARCHAR(255) NOT NULL,
    actor_id       VARCHAR(256) NOT NULL,
    occurred_at    DATETIME(6) NOT NULL,
    PRIMARY KEY (membership_id, position)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

CREATE INDEX membership_event_by_position ON membership_event (position);

CREATE VIEW change_log AS
SELECT
    'donation' AS context,
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
    'membership' AS context,
    m.membership_id AS subject_id,
    m.position AS position,
    m.stream AS stream,
    m.event_type AS event_type,
    m.actor_kind AS actor_kind,
    m.actor_id AS actor_id,
    m.occurred_at AS occurred_at
FROM membership_event AS m;
