-- Membership applications the scrub policy allows to scrub (domain/wmde-memberships.md §1.6,
-- the legacy rule since 2026-07): not scrubbed AND (exported OR cancelled OR created before
-- the grace cutoff ?1). Moderation is no input. Every unscrubbed application becomes a
-- candidate once its grace period is over, so the rows read are the candidates plus the
-- young applications, found through `membership_application_by_created_at`. ?2 limits the
-- batch.
SELECT id, created_at,
       CASE WHEN is_exported = 1 THEN 'exported'
            WHEN cancellation_state = 'cancelled' THEN 'cancelled_or_deleted'
            ELSE 'after_grace_period' END AS rule
FROM membership_application
WHERE is_scrubbed = 0
  AND (is_exported = 1 OR cancellation_state = 'cancelled' OR created_at <= ?1)
ORDER BY created_at
LIMIT ?2
