-- Records a refused contribution_tracking change (first contribution id wins; allocation
-- collisions are not merged).
-- One statement per batch: every column is bound as an array ($1 = all ids, ...) and
-- UNNEST turns the arrays back into rows.
INSERT INTO contribution_tracking_conflict (
    position, contribution_tracking_id, kind, existing, attempted, at
)
SELECT
    u.position, u.contribution_tracking_id, u.kind, u.existing, u.attempted, u.at
FROM UNNEST(
    $1::BIGINT[],
    $2::BIGINT[],
    $3::TEXT[],
    $4::TEXT[],
    $5::TEXT[],
    $6::TIMESTAMPTZ[]
) AS u (
    position, contribution_tracking_id, kind, existing, attempted, at
)
;
