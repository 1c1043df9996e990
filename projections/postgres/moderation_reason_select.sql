-- Loads the open moderation reasons of the donations with moderation events in a batch.
SELECT donation_id, moderation_identifier, source
FROM donation_moderation_reason
WHERE donation_id = ANY($1::BIGINT[]);
