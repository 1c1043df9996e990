-- Records a refused contribution_tracking change (first contribution id wins; allocation
-- collisions are not merged).
-- The projector repeats the VALUES tuple once per row (multi-row insert, one statement
-- per chunk of rows), binding the columns in the order listed.
INSERT INTO contribution_tracking_conflict (
    position, contribution_tracking_id, kind, existing, attempted, at
)
VALUES (?, ?, ?, ?, ?, ?)
;
