-- A projector's checkpoint. Inside the batch transaction the row lock serialises projectors,
-- so two of them cannot apply the same batch.
SELECT position FROM projector_checkpoint WHERE projector = ? FOR UPDATE;
