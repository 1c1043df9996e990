-- Stores the last applied position, in the same transaction as the rows it covers.
UPDATE projector_checkpoint
SET position = $1, updated_at = $2
WHERE projector = $3;
