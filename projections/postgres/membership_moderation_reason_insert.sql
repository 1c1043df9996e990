-- Writes the open moderation reasons of the membership applications whose reasons a batch changed (after
-- their old rows were deleted).
-- One statement per batch: every column is bound as an array ($1 = all ids, ...) and
-- UNNEST turns the arrays back into rows.
INSERT INTO membership_moderation_reason (
    membership_id, moderation_identifier, source
)
SELECT
    u.membership_id, u.moderation_identifier, u.source
FROM UNNEST(
    $1::BIGINT[],
    $2::TEXT[],
    $3::TEXT[]
) AS u (
    membership_id, moderation_identifier, source
)
;
