-- Loads the current donation rows a batch touches, before the batch is folded in memory.
-- ? is a JSON array of ids, read by JSON_TABLE; STRAIGHT_JOIN reads the ids first and looks
-- each row up by its primary key.
SELECT STRAIGHT_JOIN
    t.id, t.created_at, t.updated_at, t.amount_cents, t.currency, t.interval_months, t.payment_id,
    t.payment_method, t.payment_state, t.payment_booked_at, t.deletion_state, t.moderation_state,
    t.is_exported, t.exported_at, t.export_batch, t.is_scrubbed, t.scrubbed_at, t.scrub_rule,
    t.donor_kind, t.salutation, t.title, t.first_name, t.last_name, t.company_name, t.street, t.postcode,
    t.city, t.country, t.email, t.wants_newsletter, t.wants_receipt, t.comment, t.comment_is_public,
    t.comment_display_name, t.tracking_id, t.campaign, t.keyword, t.impression_count,
    t.banner_impression_count, t.contribution_tracking_id, t.parent_donation_id, t.approved_as_anonymous
FROM (SELECT DISTINCT id FROM JSON_TABLE(?, '$[*]' COLUMNS (id BIGINT PATH '$')) AS j0) AS j
JOIN donation AS t ON t.id = j.id;
