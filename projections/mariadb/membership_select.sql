-- Loads the current membership_application rows a batch touches, before the batch is folded
-- in memory.
-- ? is a JSON array of ids, read by JSON_TABLE; STRAIGHT_JOIN reads the ids first and looks
-- each row up by its primary key.
SELECT STRAIGHT_JOIN
    t.id, t.created_at, t.updated_at, t.applicant_kind, t.membership_type, t.fee_cents,
    t.interval_months, t.yearly_fee_cents, t.payment_id, t.payment_method,
    t.is_confirmed, t.moderation_state, t.cancellation_state, t.is_exported, t.exported_at,
    t.export_batch, t.is_scrubbed, t.scrubbed_at, t.scrub_rule, t.salutation, t.title,
    t.first_name, t.last_name, t.company_name, t.street, t.postcode, t.city, t.country,
    t.email, t.phone, t.date_of_birth, t.iban, t.bic, t.payment_reference_code, t.campaign,
    t.keyword, t.incentives, t.wants_receipt, t.receipt_answered
FROM (SELECT DISTINCT id FROM JSON_TABLE(?, '$[*]' COLUMNS (id BIGINT PATH '$')) AS j0) AS j
JOIN membership_application AS t ON t.id = j.id;
