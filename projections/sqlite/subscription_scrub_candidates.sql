-- Subscriptions the removal policy allows to remove (domain/wmde-memberships.md §3, the
-- legacy `removeAll`): not removed AND (exported OR made before the grace cutoff ?1). The
-- first condition repeats the predicate of the partial index `subscription_scrub_candidates`,
-- so only that index is read: the subscriptions not removed, not the table.
-- ?2 limits the batch.
SELECT id, created_at,
       CASE WHEN is_exported = 1 THEN 'exported' ELSE 'after_grace_period' END AS rule
FROM subscription
WHERE is_removed = 0
  AND (is_exported = 1 OR created_at <= ?1)
ORDER BY created_at
LIMIT ?2
