-- Creates a projector's checkpoint row (position NULL: nothing applied yet). The no-op update
-- keeps an existing row as it is (INSERT IGNORE would also hide other errors).
INSERT INTO projector_checkpoint (projector, position, updated_at)
VALUES (?, NULL, ?)
ON DUPLICATE KEY UPDATE projector = projector;
