-- Donations the scrub policy allows to scrub: not scrubbed AND (exported OR cancelled/deleted
-- OR abandoned: an external payment still pending and created before the grace cutoff, the
-- first ?). MariaDB has no partial index: the generated column `scrub_candidate_since` is the
-- creation time exactly when the first conjunct holds and NULL otherwise, and its index
-- `donation_scrub_candidates` holds the candidates in creation order, so the cost follows the
-- number of candidates, not the size of the table. The second ? limits the batch.
SELECT id, created_at,
       CASE WHEN is_exported = 1 THEN 'exported'
            WHEN deletion_state <> 'active' THEN 'cancelled_or_deleted'
            ELSE 'abandoned' END AS rule
FROM donation
WHERE scrub_candidate_since IS NOT NULL
  AND (is_exported = 1 OR deletion_state <> 'active' OR created_at <= ?)
ORDER BY scrub_candidate_since
LIMIT ?
