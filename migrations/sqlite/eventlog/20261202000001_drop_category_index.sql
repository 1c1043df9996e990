-- Category reads scan the log by position instead of using an index: the (category, position)
-- index cost every append a page write per category touched (a fifth of the WAL frames of a
-- group commit, measured with `ledger bench --parts append`), while the only category reads
-- are rare (`read_category`) or run once at start-up on the stream index
-- (`highest_stream_number`).
DROP INDEX IF EXISTS events_by_category;
