-- Writes the status mirror's copies of received changes.
-- The projector's session repeats the VALUES tuple once per row (multi-row insert),
-- binding the columns in the order listed.
INSERT INTO civishare_incoming (
    node, seq, sender, message_id, change_index, change_type, entity, entity_reference, status,
    reason, local_reference, received_at
)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (node, seq) DO UPDATE SET
    sender = excluded.sender,
    message_id = excluded.message_id,
    change_index = excluded.change_index,
    change_type = excluded.change_type,
    entity = excluded.entity,
    entity_reference = excluded.entity_reference,
    status = excluded.status,
    reason = excluded.reason,
    local_reference = excluded.local_reference,
    received_at = excluded.received_at;
