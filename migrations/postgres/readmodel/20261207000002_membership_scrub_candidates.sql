-- The membership scrub selection (projections/postgres/membership_scrub_candidates.sql) reads
-- only unscrubbed applications, in creation order: its first condition repeats this index's
-- predicate, so the planner reads only the index, and the cost follows the unscrubbed
-- applications (the candidates and those inside their grace period), not the table.
CREATE INDEX membership_application_scrub_candidates ON membership_application (created_at)
    WHERE NOT is_scrubbed;
