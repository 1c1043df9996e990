-- Looks up the ids of (campaign, keyword) pairs; ?1 is a JSON array of [campaign, keyword]
-- pairs, already lowercased. Also returns the highest id, from which new ids continue.
SELECT t.id, t.campaign, t.keyword
FROM json_each(?1) AS j
JOIN donation_tracking AS t
    ON t.campaign = json_extract(j.value, '$[0]') AND t.keyword = json_extract(j.value, '$[1]');
