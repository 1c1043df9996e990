-- The optional rule (off by default): donations still under moderation, created before ?1.
-- Reads the partial index `donation_open_moderation`.
SELECT id, created_at, 'stale_moderation' AS rule
FROM donation
WHERE moderation_state = 'open'
  AND is_scrubbed = 0
  AND created_at <= ?1
ORDER BY created_at
LIMIT ?2
