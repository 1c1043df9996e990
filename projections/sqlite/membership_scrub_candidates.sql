-- Membership applications the scrub policy allows to scrub (domain/wmde-memberships.md §1.6,
-- the legacy rule since 2026-07): not scrubbed AND (exported OR cancelled OR created before
-- the grace cutoff ?1). Moderation is no input. The first condition repeats the predicate
-- of the partial index `membership_application_scrub_candidates`, so only that index is read:
-- the unscrubbed applications (the candidates and those inside their grace period), not the
-- table. ?2 limits the batch.
SELECT id, created_at,
       CASE WHEN is_exported = 1 THEN 'exported'
            WHEN cancellation_state = 'cancelled' THEN 'cancelled_or_deleted'
            ELSE 'after_grace_period' END AS rule
FROM membership_application
WHERE is_scrubbed = 0
  AND (is_exported = 1 OR cancellation_state = 'cancelled' OR created_at <= ?1)
ORDER BY created_at
LIMIT ?2
