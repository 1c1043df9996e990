-- Writes the status mirror's copies of outgoing changes (one row per change and peer).
-- The projector's session repeats the VALUES tuple once per row (multi-row insert),
-- binding the columns in the order listed.
INSERT INTO civishare_outgoing (
    node, seq, peer, log_position, event_id, change_type, entity, entity_reference, status,
    attempts, last_error, message_id, peer_status, peer_reason, queued_at, sent_at,
    acknowledged_at
)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (node, seq) DO UPDATE SET
    peer = excluded.peer,
    log_position = excluded.log_position,
    event_id = excluded.event_id,
    change_type = excluded.change_type,
    entity = excluded.entity,
    entity_reference = excluded.entity_reference,
    status = excluded.status,
    attempts = excluded.attempts,
    last_error = excluded.last_error,
    message_id = excluded.message_id,
    peer_status = excluded.peer_status,
    peer_reason = excluded.peer_reason,
    queued_at = excluded.queued_at,
    sent_at = excluded.sent_at,
    acknowledged_at = excluded.acknowledged_at;
