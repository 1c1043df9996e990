-- Loads the open moderation reasons of the membership applications with moderation events in
-- a batch.
-- ?1 is a JSON array of membership ids.
SELECT membership_id, moderation_identifier, source
FROM membership_moderation_reason
WHERE membership_id IN (SELECT value FROM json_each(?1));
