-- Writes the folded rows of the subscriptions a batch touched (one row each).
-- The projector repeats the VALUES tuple once per row (multi-row insert, one statement
-- per chunk of rows), binding the columns in the order listed.
INSERT INTO subscription (
    id, created_at, status, confirmed_at, tracking, source, is_exported, exported_at,
    export_batch, is_removed, removed_at, removal_rule
)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (id) DO UPDATE SET
    created_at = excluded.created_at,
    status = excluded.status,
    confirmed_at = excluded.confirmed_at,
    tracking = excluded.tracking,
    source = excluded.source,
    is_exported = excluded.is_exported,
    exported_at = excluded.exported_at,
    export_batch = excluded.export_batch,
    is_removed = excluded.is_removed,
    removed_at = excluded.removed_at,
    removal_rule = excluded.removal_rule;
