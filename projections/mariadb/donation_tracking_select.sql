-- Looks up the ids of (campaign, keyword) pairs; ? is a JSON array of [campaign, keyword]
-- pairs, already lowercased. The columns compare byte for byte (utf8mb4_nopad_bin), as the
-- unique key does; they are read back as text of the connection's collation (a binary
-- collation marks a column binary, which the driver does not read as a string).
SELECT STRAIGHT_JOIN t.id, CAST(t.campaign AS CHAR) AS campaign, CAST(t.keyword AS CHAR) AS keyword
FROM JSON_TABLE(?, '$[*]' COLUMNS (
    campaign VARCHAR(255) PATH '$[0]',
    keyword VARCHAR(255) PATH '$[1]'
)) AS j
JOIN donation_tracking AS t
    ON t.campaign = j.campaign COLLATE utf8mb4_nopad_bin
   AND t.keyword = j.keyword COLLATE utf8mb4_nopad_bin;
