-- Donations the scrub policy allows to scrub: not scrubbed AND (exported OR cancelled/deleted
-- OR abandoned: an external payment still pending and created before the grace cutoff $1).
-- The first conjunct repeats the predicate of the partial index `donation_scrub_candidates`,
-- so the planner reads only that index: the cost follows the number of candidates, not the
-- size of the table. $2 limits the batch.
SELECT id, created_at,
       CASE WHEN is_exported THEN 'exported'
            WHEN deletion_state <> 'active' THEN 'cancelled_or_deleted'
            ELSE 'abandoned' END AS rule
FROM donation
WHERE NOT is_scrubbed
  AND (is_exported
       OR deletion_state <> 'active'
       OR (payment_state = 'pending' AND payment_method IN ('MCP', 'PPL', 'SUB')))
  AND (is_exported OR deletion_state <> 'active' OR created_at <= $1)
ORDER BY created_at
LIMIT $2
