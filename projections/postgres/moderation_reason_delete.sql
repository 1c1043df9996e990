-- Removes the reasons of donations whose reason set a batch changed; the new set is inserted
-- after.
DELETE FROM donation_moderation_reason
WHERE donation_id = ANY($1::BIGINT[]);
