-- Writes the status mirror's copies of outgoing changes (one row per change and peer).
-- The projector's session repeats the VALUES tuple once per row (multi-row insert),
-- binding the columns in the order listed.
INSERT INTO civishare_outgoing (
    node, seq, peer, log_position, event_id, change_type, entity, entity_reference, status,
    attempts, last_error, message_id, peer_status, peer_reason, queued_at, sent_at,
    acknowledged_at
)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON DUPLICATE KEY UPDATE
    peer = VALUES(peer),
    log_position = VALUES(log_position),
    event_id = VALUES(event_id),
    change_type = VALUES(change_type),
    entity = VALUES(entity),
    entity_reference = VALUES(entity_reference),
    status = VALUES(status),
    attempts = VALUES(attempts),
    last_error = VALUES(last_error),
    message_id = VALUES(message_id),
    peer_status = VALUES(peer_status),
    peer_reason = VALUES(peer_reason),
    queued_at = VALUES(queued_at),
    sent_at = VALUES(sent_at),
    acknowledged_at = VALUES(acknowledged_at);
