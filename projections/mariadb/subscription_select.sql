-- Loads the current subscription rows a batch touches, before the batch is folded in memory.
-- ? is a JSON array of ids, read by JSON_TABLE; STRAIGHT_JOIN reads the ids first and looks
-- each row up by its primary key.
SELECT STRAIGHT_JOIN
    t.id, t.created_at, t.status, t.confirmed_at, t.tracking, t.source, t.is_exported,
    t.exported_at, t.export_batch, t.is_removed, t.removed_at, t.removal_rule
FROM (SELECT DISTINCT id FROM JSON_TABLE(?, '$[*]' COLUMNS (id BIGINT PATH '$')) AS j0) AS j
JOIN subscription AS t ON t.id = j.id;
