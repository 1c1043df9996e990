-- Stores the status mirror's checkpoint: the last revision of `civishare.sqlite` copied.
-- One statement per batch: every column is bound as an array and UNNEST turns the arrays
-- back into rows.
INSERT INTO civishare_status_checkpoint (
    node, revision, updated_at
)
SELECT
    u.node, u.revision, u.updated_at
FROM UNNEST(
    $1::TEXT[],
    $2::BIGINT[],
    $3::TIMESTAMPTZ[]
) AS u (
    node, revision, updated_at
)
ON CONFLICT (node) DO UPDATE SET
    revision = EXCLUDED.revision,
    updated_at = EXCLUDED.updated_at;
