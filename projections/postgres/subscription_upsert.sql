-- Writes the folded rows of the subscriptions a batch touched (one row each).
-- One statement per batch: every column is bound as an array ($1 = all ids, ...) and
-- UNNEST turns the arrays back into rows.
INSERT INTO subscription (
    id, created_at, status, confirmed_at, tracking, source, is_exported, exported_at,
    export_batch, is_removed, removed_at, removal_rule
)
SELECT
    u.id, u.created_at, u.status, u.confirmed_at, u.tracking, u.source, u.is_exported,
    u.exported_at, u.export_batch, u.is_removed, u.removed_at, u.removal_rule
FROM UNNEST(
    $1::BIGINT[],
    $2::TIMESTAMPTZ[],
    $3::TEXT[],
    $4::TIMESTAMPTZ[],
    $5::TEXT[],
    $6::TEXT[],
    $7::BOOLEAN[],
    $8::TIMESTAMPTZ[],
    $9::TEXT[],
    $10::BOOLEAN[],
    $11::TIMESTAMPTZ[],
    $12::TEXT[]
) AS u (
    id, created_at, status, confirmed_at, tracking, source, is_exported, exported_at,
    export_batch, is_removed, removed_at, removal_rule
)
ON CONFLICT (id) DO UPDATE SET
    created_at = EXCLUDED.created_at,
    status = EXCLUDED.status,
    confirmed_at = EXCLUDED.confirmed_at,
    tracking = EXCLUDED.tracking,
    source = EXCLUDED.source,
    is_exported = EXCLUDED.is_exported,
    exported_at = EXCLUDED.exported_at,
    export_batch = EXCLUDED.export_batch,
    is_removed = EXCLUDED.is_removed,
    removed_at = EXCLUDED.removed_at,
    removal_rule = EXCLUDED.removal_rule;
