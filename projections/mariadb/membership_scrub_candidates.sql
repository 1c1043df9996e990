-- Membership applications the scrub policy allows to scrub (domain/wmde-memberships.md §1.6,
-- the legacy rule since 2026-07): not scrubbed AND (exported OR cancelled OR created before
-- the grace cutoff, the first ?). Moderation is no input. The first condition reads one range
-- of the index `membership_application_scrub_candidates` (is_scrubbed, created_at): the
-- unscrubbed applications (the candidates and those inside their grace period), not the
-- table. The second ? limits the batch.
SELECT id, created_at,
       CASE WHEN is_exported = 1 THEN 'exported'
            WHEN cancellation_state = 'cancelled' THEN 'cancelled_or_deleted'
            ELSE 'after_grace_period' END AS rule
FROM membership_application
WHERE is_scrubbed = 0
  AND (is_exported = 1 OR cancellation_state = 'cancelled' OR created_at <= ?)
ORDER BY created_at
LIMIT ?
