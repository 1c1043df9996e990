-- Loads the current membership_application rows a batch touches, before the batch is folded
-- in memory.
SELECT
    id::BIGINT AS id, created_at, updated_at, applicant_kind, membership_type,
    fee_cents::BIGINT AS fee_cents, interval_months::BIGINT AS interval_months,
    yearly_fee_cents::BIGINT AS yearly_fee_cents, payment_id::BIGINT AS payment_id,
    payment_method, is_confirmed, moderation_state, cancellation_state, is_exported,
    exported_at, export_batch, is_scrubbed, scrubbed_at, scrub_rule, salutation, title,
    first_name, last_name, company_name, street, postcode, city, country, email, phone,
    date_of_birth, iban, bic, payment_reference_code, campaign, keyword, incentives,
    wants_receipt, receipt_answered
FROM membership_application
WHERE id = ANY($1::BIGINT[]);
