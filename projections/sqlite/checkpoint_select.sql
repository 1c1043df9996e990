-- A projector's checkpoint. Inside the batch transaction (BEGIN IMMEDIATE) it is read under
-- the write lock, so two projectors cannot apply the same batch.
SELECT position FROM projector_checkpoint WHERE projector = ?1;
