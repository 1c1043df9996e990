-- Removes the reasons of membership applications whose reason set a batch changed; the new set is inserted
-- after. ? is a JSON array of membership ids, read first (STRAIGHT_JOIN), each looked up by the
-- primary key's first column.
DELETE r
FROM JSON_TABLE(?, '$[*]' COLUMNS (id BIGINT PATH '$')) AS j
STRAIGHT_JOIN membership_moderation_reason AS r ON r.membership_id = j.id;
