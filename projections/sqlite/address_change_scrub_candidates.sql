-- Address changes whose address the scrub policy allows to scrub (domain/wmde-memberships.md
-- §2, the legacy `remove-exported` deleter): not scrubbed, holding an address, AND (the current
-- version exported OR changed before the grace cutoff ?1). One never used, or used only to
-- opt out of the receipt, holds nothing personal and is never selected. The first conditions
-- repeat the predicate of the partial index `address_change_scrub_candidates`, so only
-- that index is read: the unscrubbed address changes with an address, not the table.
-- ?2 limits the batch.
-- The change time is read as `created_at`, the column name every candidate statement shares.
SELECT id, modified_at AS created_at,
       CASE WHEN is_exported = 1 THEN 'exported' ELSE 'after_grace_period' END AS rule
FROM address_change
WHERE is_scrubbed = 0 AND has_address = 1
  AND (is_exported = 1 OR modified_at <= ?1)
ORDER BY modified_at
LIMIT ?2
