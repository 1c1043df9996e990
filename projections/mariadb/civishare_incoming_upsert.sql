-- Writes the status mirror's copies of received changes.
-- The projector's session repeats the VALUES tuple once per row (multi-row insert),
-- binding the columns in the order listed.
INSERT INTO civishare_incoming (
    node, seq, sender, message_id, change_index, change_type, entity, entity_reference, status,
    reason, local_reference, received_at
)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON DUPLICATE KEY UPDATE
    sender = VALUES(sender),
    message_id = VALUES(message_id),
    change_index = VALUES(change_index),
    change_type = VALUES(change_type),
    entity = VALUES(entity),
    entity_reference = VALUES(entity_reference),
    status = VALUES(status),
    reason = VALUES(reason),
    local_reference = VALUES(local_reference),
    received_at = VALUES(received_at);
