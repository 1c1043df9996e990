-- Loads the open moderation reasons of the donations with moderation events in a batch.
-- ?1 is a JSON array of donation ids.
SELECT donation_id, moderation_identifier, source
FROM donation_moderation_reason
WHERE donation_id IN (SELECT value FROM json_each(?1));
