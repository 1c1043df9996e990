-- A projector's checkpoint. Inside the batch transaction it is read after the checkpoint_ensure
-- INSERT took the write lock, so two projectors cannot apply the same batch.
SELECT position FROM projector_checkpoint WHERE projector = ?1;
