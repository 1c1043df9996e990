-- Writes the open moderation reasons of the donations whose reasons a batch changed (after
-- their old rows were deleted).
-- The projector repeats the VALUES tuple once per row (multi-row insert, one statement
-- per chunk of rows), binding the columns in the order listed.
INSERT INTO donation_moderation_reason (
    donation_id, moderation_identifier, source
)
VALUES (?, ?, ?)
;
