-- Appends the address-change change log: one row per event of an address change's streams. No ON
-- CONFLICT: a position applied twice is a bug and must fail loudly.
-- The projector repeats the VALUES tuple once per row (multi-row insert, one statement
-- per chunk of rows), binding the columns in the order listed.
INSERT INTO address_change_event (
    address_change_id, position, stream, event_type, actor_kind, actor_id, occurred_at
)
VALUES (?, ?, ?, ?, ?, ?, ?)
;
