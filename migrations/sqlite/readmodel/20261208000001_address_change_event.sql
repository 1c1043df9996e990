-- The change log covers address changes: `address_change_event` has one row per event of an
-- address change's three streams (`address_change`, `address_change_export`,
-- `address_change_scrub`; the token index `address_change_token-*` makes none), with the
-- columns of `donation_event` and `membership_event` (who — the actor's kind and id —, which
-- event, when), written by the projector in the batch that folds the event.
-- The view `change_log` gets its third UNION ALL arm (`context` = 'address_change'); a landed
-- migration is never edited, so the view is dropped and created again here.
-- Read models that projected address changes before this migration have no rows here for
-- them until `ledger rebuild` (verify reports them as missing).

CREATE TABLE address_change_event (
    address_change_id  INTEGER NOT NULL CHECK (address_change_id >= 0),
    position           INTEGER NOT NULL CHECK (position >= 0),
    stream             TEXT    NOT NULL,
    event_type         TEXT    NOT NULL,
    actor_kind         TEXT    NOT NULL,
    actor_id           TEXT    NOT NULL,
    occurred_at        TEXT    NOT NULL,
    PRIMARY KEY (address_change_id, position)
);

CREATE INDEX address_change_event_by_position ON address_change_event (position);

DROP VIEW change_log;

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
FROM membership_event AS m
UNION ALL
SELECT
    'address_change' AS context,
    a.address_change_id AS subject_id,
    a.position AS position,
    a.stream AS stream,
    a.event_type AS event_type,
    a.actor_kind AS actor_kind,
    a.actor_id AS actor_id,
    a.occurred_at AS occurred_at
FROM address_change_event AS a;
