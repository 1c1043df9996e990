-- Loads the open moderation reasons of the membership applications with moderation events in
-- a batch.
SELECT membership_id, moderation_identifier, source
FROM membership_moderation_reason
WHERE membership_id = ANY($1::BIGINT[]);
