-- Stores the status mirror's checkpoint: the last revision of `civishare.sqlite` copied.
-- The projector's session repeats the VALUES tuple once per row (multi-row insert),
-- binding the columns in the order listed.
INSERT INTO civishare_status_checkpoint (
    node, revision, updated_at
)
VALUES (?, ?, ?)
ON DUPLICATE KEY UPDATE
    revision = VALUES(revision),
    updated_at = VALUES(updated_at);
