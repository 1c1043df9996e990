-- The positions an operator told this projector to pass over, within a batch's range.
SELECT position
FROM projector_skipped_event
WHERE projector = ? AND position >= ? AND position <= ?;
