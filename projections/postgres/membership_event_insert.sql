-- Appends the membership change log: one row per event of an application's streams. No ON
-- CONFLICT: a position applied twice is a bug and must fail loudly.
-- One statement per batch: every column is bound as an array ($1 = all ids, ...) and
-- UNNEST turns the arrays back into rows.
INSERT INTO membership_event (
    membership_id, position, stream, event_type, actor_kind, actor_id, occurred_at
)
SELECT
    u.membership_id, u.position, u.stream, u.event_type, u.actor_kind, u.actor_id,
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
    membership_id, position, stream, event_type, actor_kind, actor_id, occurred_at
)
;
