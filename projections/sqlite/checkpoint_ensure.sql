-- Creates a projector's checkpoint row (position NULL: nothing applied yet).
INSERT INTO projector_checkpoint (projector, position, updated_at)
VALUES (?1, NULL, ?2)
ON CONFLICT (projector) DO NOTHING;
