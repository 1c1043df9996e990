-- Loads the open moderation reasons of the membership applications with moderation events in
-- a batch.
-- ? is a JSON array of ids, read by JSON_TABLE; STRAIGHT_JOIN reads the ids first and looks
-- each row up by its primary key. The key's text columns (utf8mb4_nopad_bin) are read back as
-- text of the connection's collation, which the driver reads as a string.
SELECT STRAIGHT_JOIN t.membership_id, CAST(t.moderation_identifier AS CHAR) AS moderation_identifier,
    CAST(t.source AS CHAR) AS source
FROM (SELECT DISTINCT id FROM JSON_TABLE(?, '$[*]' COLUMNS (id BIGINT PATH '$')) AS j0) AS j
JOIN membership_moderation_reason AS t ON t.membership_id = j.id;
