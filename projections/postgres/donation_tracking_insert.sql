-- Adds new lowercased (campaign, keyword) pairs; ids are assigned by the projector in order of
-- first appearance, so a rebuild assigns the same ids.
-- One statement per batch: every column is bound as an array ($1 = all ids, ...) and
-- UNNEST turns the arrays back into rows.
INSERT INTO donation_tracking (
    id, campaign, keyword
)
SELECT
    u.id, u.campaign, u.keyword
FROM UNNEST(
    $1::BIGINT[],
    $2::TEXT[],
    $3::TEXT[]
) AS u (
    id, campaign, keyword
)
;
