-- Adds new lowercased (campaign, keyword) pairs; ids are assigned by the projector in order of
-- first appearance, so a rebuild assigns the same ids.
-- The projector repeats the VALUES tuple once per row (multi-row insert, one statement
-- per chunk of rows), binding the columns in the order listed.
INSERT INTO donation_tracking (
    id, campaign, keyword
)
VALUES (?, ?, ?)
;
