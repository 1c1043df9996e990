-- Removes the reasons of donations whose reason set a batch changed; the new set is inserted
-- after. ? is a JSON array of donation ids, read first (STRAIGHT_JOIN), each looked up by the
-- primary key's first column.
DELETE r
FROM JSON_TABLE(?, '$[*]' COLUMNS (id BIGINT PATH '$')) AS j
STRAIGHT_JOIN donation_moderation_reason AS r ON r.donation_id = j.id;
