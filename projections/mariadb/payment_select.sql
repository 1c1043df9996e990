-- Loads the current payment rows a batch touches, before the batch is folded in memory.
-- ? is a JSON array of ids, read by JSON_TABLE; STRAIGHT_JOIN reads the ids first and looks
-- each row up by its primary key.
SELECT STRAIGHT_JOIN
    t.id, t.donation_id, t.method, t.amount_cents, t.currency, t.interval_months, t.state,
    t.state_before_cancellation, t.valuation_date, t.parent_payment_id, t.refunded_cents,
    t.charged_back_cents, t.iban, t.bic, t.payment_reference_code, t.transaction_id, t.payer_id,
    t.subscription_id, t.payer_status, t.provider_payment_status, t.created_at, t.updated_at
FROM (SELECT DISTINCT id FROM JSON_TABLE(?, '$[*]' COLUMNS (id BIGINT PATH '$')) AS j0) AS j
JOIN payment AS t ON t.id = j.id;
