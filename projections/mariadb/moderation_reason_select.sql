-- Loads the open moderation reasons of the donations with moderation events in a batch.
-- ? is a JSON array of ids, read by JSON_TABLE; STRAIGHT_JOIN reads the ids first and looks
-- each row up by its primary key.
SELECT STRAIGHT_JOIN t.donation_id, t.moderation_identifier, t.source
FROM (SELECT DISTINCT id FROM JSON_TABLE(?, '$[*]' COLUMNS (id BIGINT PATH '$')) AS j0) AS j
JOIN donation_moderation_reason AS t ON t.donation_id = j.id;
