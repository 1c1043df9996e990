-- Writes the status mirror's copies of outgoing changes (one row per change and peer).
-- One statement per batch: every column is bound as an array and UNNEST turns the arrays
-- back into rows.
INSERT INTO civishare_outgoing (
    node, seq, peer, log_position, event_id, change_type, entity, entity_reference, status,
    attempts, last_error, message_id, peer_status, peer_reason, queued_at, sent_at,
    acknowledged_at
)
SELECT
    u.node, u.seq, u.peer, u.log_position, u.event_id, u.change_type, u.entity,
    u.entity_reference, u.status, u.attempts, u.last_error, u.message_id, u.peer_status,
    u.peer_reason, u.queued_at, u.sent_at, u.acknowledged_at
FROM UNNEST(
    $1::TEXT[],
    $2::BIGINT[],
    $3::TEXT[],
    $4::BIGINT[],
    $5::TEXT[],
    $6::TEXT[],
    $7::TEXT[],
    $8::TEXT[],
    $9::TEXT[],
    $10::BIGINT[],
    $11::TEXT[],
    $12::TEXT[],
    $13::TEXT[],
    $14::TEXT[],
    $15::TIMESTAMPTZ[],
    $16::TIMESTAMPTZ[],
    $17::TIMESTAMPTZ[]
) AS u (
    node, seq, peer, log_position, event_id, change_type, entity, entity_reference, status,
    attempts, last_error, message_id, peer_status, peer_reason, queued_at, sent_at,
    acknowledged_at
)
ON CONFLICT (node, seq) DO UPDATE SET
    peer = EXCLUDED.peer,
    log_position = EXCLUDED.log_position,
    event_id = EXCLUDED.event_id,
    change_type = EXCLUDED.change_type,
    entity = EXCLUDED.entity,
    entity_reference = EXCLUDED.entity_reference,
    status = EXCLUDED.status,
    attempts = EXCLUDED.attempts,
    last_error = EXCLUDED.last_error,
    message_id = EXCLUDED.message_id,
    peer_status = EXCLUDED.peer_status,
    peer_reason = EXCLUDED.peer_reason,
    queued_at = EXCLUDED.queued_at,
    sent_at = EXCLUDED.sent_at,
    acknowledged_at = EXCLUDED.acknowledged_at;
