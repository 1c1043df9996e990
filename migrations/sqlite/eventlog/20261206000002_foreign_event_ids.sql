-- A KurrentDB client's event id is unique per stream, not log-wide: the same id may be
-- appended to two streams (KurrentDB accepts it). Such an event is keyed in `event_id` by a
-- name-based UUID of its stream and its id, and its own id is kept here. NULL: the event's id
-- is `event_id` (the ledger's own events, whose ids stay unique across the log).
ALTER TABLE events ADD COLUMN client_event_id BLOB;
