-- Removes the reasons of membership applications whose reason set a batch changed; the new set is inserted
-- after.
DELETE FROM membership_moderation_reason
WHERE membership_id = ANY($1::BIGINT[]);
