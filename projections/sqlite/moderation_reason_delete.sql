-- Removes the reasons of donations whose reason set a batch changed; the new set is inserted
-- after. ?1 is a JSON array of donation ids.
DELETE FROM donation_moderation_reason
WHERE donation_id IN (SELECT value FROM json_each(?1));
