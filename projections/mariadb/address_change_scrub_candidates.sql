-- Address changes whose address the scrub policy allows to scrub (domain/wmde-memberships.md
-- §2, the legacy `remove-exported` deleter): not scrubbed, holding an address, AND (the current
-- version exported OR changed before the grace cutoff (the first ?)). One never used, or used only to
-- opt out of the receipt, holds nothing personal and is never selected. The first conditions
-- read one range of the index `address_change_scrub_candidates` (is_scrubbed,
-- has_address, modified_at): the unscrubbed address changes with an address, not the table.
-- The second ? limits the batch.
-- The change time is read as `created_at`, the column name every candidate statement shares.
SELECT id, modified_at AS created_at,
       CASE WHEN is_exported = 1 THEN 'exported' ELSE 'after_grace_period' END AS rule
FROM address_change
WHERE is_scrubbed = 0 AND has_address = 1
  AND (is_exported = 1 OR modified_at <= ?)
ORDER BY modified_at
LIMIT ?
