-- Records an operator's decision to pass over an event the projector cannot apply.
INSERT INTO projector_skipped_event (projector, position, stream, event_type, reason, skipped_by, at)
VALUES (?, ?, ?, ?, ?, ?, ?);
