-- Appends the address-change change log: one row per event of an address change's streams. No ON
-- CONFLICT: a position applied twice is a bug and must fail loudly.
-- One statement per batch: every column is bound as an array ($1 = all ids, ...) and
-- UNNEST turns the arrays back into rows.
INSERT INTO address_change_event (
    address_change_id, position, stream, event_type, actor_kind, actor_id, occurred_at
)
SELECT
    u.address_change_id, u.position, u.stream, u.event_type, u.actor_kind, u.actor_id,
    u.occurred_at
FROM UNNEST(
    $1::BIGINT[],
    $2::BIGINT[],
    $3::TEXT[],
    $4::TEXT[],
    $5::TEXT[],
    $6::TEXT[],
    $7::TIMESTAMPTZ[]
) AS u (
    address_change_id, position, stream, event_type, actor_kind, actor_id, occurred_at
)
;
