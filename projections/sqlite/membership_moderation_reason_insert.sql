-- Writes the open moderation reasons of the membership applications whose reasons a batch changed (after
-- their old rows were deleted).
-- The projector repeats the VALUES tuple once per row (multi-row insert, one statement
-- per chunk of rows), binding the columns in the order listed.
INSERT INTO membership_moderation_reason (
    membership_id, moderation_identifier, source
)
VALUES (?, ?, ?)
;
