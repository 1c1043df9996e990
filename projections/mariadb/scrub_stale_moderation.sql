-- The optional rule (off by default): donations still under moderation, created before ?.
-- Reads the index `donation_open_moderation` on the generated column `open_moderation_since`
-- (the creation time while moderation is open, else NULL).
SELECT id, created_at, 'stale_moderation' AS rule
FROM donation
WHERE open_moderation_since <= ?
  AND is_scrubbed = 0
ORDER BY open_moderation_since
LIMIT ?
