-- Writes the folded rows of the subscriptions a batch touched (one row each).
-- The projector repeats the VALUES tuple once per row (multi-row insert, one statement
-- per chunk of rows), binding the columns in the order listed.
INSERT INTO subscription (
    id, created_at, status, confirmed_at, tracking, source, is_exported, exported_at,
    export_batch, is_removed, removed_at, removal_rule
)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON DUPLICATE KEY UPDATE
    created_at = VALUES(created_at),
    status = VALUES(status),
    confirmed_at = VALUES(confirmed_at),
    tracking = VALUES(tracking),
    source = VALUES(source),
    is_exported = VALUES(is_exported),
    exported_at = VALUES(exported_at),
    export_batch = VALUES(export_batch),
    is_removed = VALUES(is_removed),
    removed_at = VALUES(removed_at),
    removal_rule = VALUES(removal_rule);
