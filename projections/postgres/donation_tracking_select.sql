-- Looks up the ids of (campaign, keyword) pairs, already lowercased.
SELECT t.id, t.campaign, t.keyword
FROM UNNEST($1::TEXT[], $2::TEXT[]) AS u (campaign, keyword)
JOIN donation_tracking AS t ON t.campaign = u.campaign AND t.keyword = u.keyword;
