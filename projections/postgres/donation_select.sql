-- Loads the current donation rows a batch touches, before the batch is folded in memory.
SELECT
    id::BIGINT AS id, created_at, updated_at, amount_cents::BIGINT AS amount_cents,
    currency, interval_months::BIGINT AS interval_months, payment_id::BIGINT AS payment_id,
    payment_method, payment_state, payment_booked_at, deletion_state, moderation_state,
    is_exported, exported_at, export_batch, is_scrubbed, scrubbed_at, scrub_rule,
    donor_kind, salutation, title, first_name, last_name, company_name, street, postcode,
    city, country, email, wants_newsletter, wants_receipt, comment, comment_is_public,
    comment_display_name, tracking_id::BIGINT AS tracking_id, campaign, keyword,
    impression_count::BIGINT AS impression_count, banner_impression_count::BIGINT AS
    banner_impression_count, contribution_tracking_id::BIGINT AS contribution_tracking_id,
    parent_donation_id::BIGINT AS parent_donation_id, approved_as_anonymous
FROM donation
WHERE id = ANY($1::BIGINT[]);
