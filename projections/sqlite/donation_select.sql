-- Loads the current donation rows a batch touches, before the batch is folded in memory.
-- ?1 is a JSON array of ids.
SELECT
    id, created_at, updated_at, amount_cents, currency, interval_months, payment_id,
    payment_method, payment_state, payment_booked_at, deletion_state, moderation_state,
    is_exported, exported_at, export_batch, is_scrubbed, scrubbed_at, scrub_rule,
    donor_kind, salutation, title, first_name, last_name, company_name, street, postcode,
    city, country, email, wants_newsletter, wants_receipt, comment, comment_is_public,
    comment_display_name, tracking_id, campaign, keyword, impression_count,
    banner_impression_count, contribution_tracking_id, parent_donation_id, approved_as_anonymous
FROM donation
WHERE id IN (SELECT value FROM json_each(?1));
