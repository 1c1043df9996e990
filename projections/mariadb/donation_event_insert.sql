-- Appends the change log: one row per event and donation it touched. No ON CONFLICT: a
-- position applied twice is a bug and must fail loudly.
-- The projector repeats the VALUES tuple once per row (multi-row insert, one statement
-- per chunk of rows), binding the columns in the order listed.
INSERT INTO donation_event (
    donation_id, position, stream, event_type, actor_kind, actor_id, occurred_at
)
VALUES (?, ?, ?, ?, ?, ?, ?)
;
