-- Removes the reasons of membership applications whose reason set a batch changed; the new set is inserted
-- after. ?1 is a JSON array of membership ids.
DELETE FROM membership_moderation_reason
WHERE membership_id IN (SELECT value FROM json_each(?1));
