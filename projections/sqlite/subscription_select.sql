-- Loads the current subscription rows a batch touches, before the batch is folded in memory.
-- ?1 is a JSON array of ids.
SELECT
    id, created_at, status, confirmed_at, tracking, source, is_exported, exported_at,
    export_batch, is_removed, removed_at, removal_rule
FROM subscription
WHERE id IN (SELECT value FROM json_each(?1));
