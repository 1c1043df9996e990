-- Subscriptions the removal policy allows to remove (domain/wmde-memberships.md §3, the
-- legacy `removeAll`): not removed AND (exported OR made before the grace cutoff (the first
-- ?)). The first condition reads one range of the index `subscription_scrub_candidates`
-- (is_removed, created_at): the subscriptions not removed, not the table.
-- The second ? limits the batch.
SELECT id, created_at,
       CASE WHEN is_exported = 1 THEN 'exported' ELSE 'after_grace_period' END AS rule
FROM subscription
WHERE is_removed = 0
  AND (is_exported = 1 OR created_at <= ?)
ORDER BY created_at
LIMIT ?
