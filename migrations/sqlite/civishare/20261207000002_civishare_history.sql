-- A peering added with its history (`ledger peer add --history`): the outgoing projector
-- queues the log's past changes for it from `next_position` until it reaches the projector's
-- checkpoint, then deletes the row. While the row exists the live projector leaves the peering
-- out, so the peer's queue stays in log order.
CREATE TABLE civishare_backfill (
    peering_id     INTEGER PRIMARY KEY,
    next_position  INTEGER NOT NULL,
    started_at     TEXT    NOT NULL
);
