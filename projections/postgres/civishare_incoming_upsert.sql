-- Writes the status mirror's copies of received changes.
-- One statement per batch: every column is bound as an array and UNNEST turns the arrays
-- back into rows.
INSERT INTO civishare_incoming (
    node, seq, sender, message_id, change_index, change_type, entity, entity_reference, status,
    reason, local_reference, received_at
)
SELECT
    u.node, u.seq, u.sender, u.message_id, u.change_index, u.change_type, u.entity,
    u.entity_reference, u.status, u.reason, u.local_reference, u.received_at
FROM UNNEST(
    $1::TEXT[],
    $2::BIGINT[],
    $3::TEXT[],
    $4::TEXT[],
    $5::BIGINT[],
    $6::TEXT[],
    $7::TEXT[],
    $8::TEXT[],
    $9::TEXT[],
    $10::TEXT[],
    $11::TEXT[],
    $12::TIMESTAMPTZ[]
) AS u (
    node, seq, sender, message_id, change_index, change_type, entity, entity_reference, status,
    reason, local_reference, received_at
)
ON CONFLICT (node, seq) DO UPDATE SET
    sender = EXCLUDED.sender,
    message_id = EXCLUDED.message_id,
    change_index = EXCLUDED.change_index,
    change_type = EXCLUDED.change_type,
    entity = EXCLUDED.entity,
    entity_reference = EXCLUDED.entity_reference,
    status = EXCLUDED.status,
    reason = EXCLUDED.reason,
    local_reference = EXCLUDED.local_reference,
    received_at = EXCLUDED.received_at;
