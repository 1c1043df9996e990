-- The membership scrub selection (projections/mariadb/membership_scrub_candidates.sql) reads
-- only unscrubbed applications, in creation order. MariaDB has no partial index: the leading
-- `is_scrubbed` column confines the range to the unscrubbed applications (the candidates and
-- those inside their grace period), so the cost follows them, not the table.
CREATE INDEX membership_application_scrub_candidates
    ON membership_application (is_scrubbed, created_at);
