-- Stores the last applied position, in the same transaction as the rows it covers.
UPDATE projector_checkpoint
SET position = ?, updated_at = ?
WHERE projector = ?;
