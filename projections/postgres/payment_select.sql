-- Loads the current payment rows a batch touches, before the batch is folded in memory.
SELECT
    id::BIGINT AS id, donation_id::BIGINT AS donation_id, method, amount_cents::BIGINT AS
    amount_cents, currency, interval_months::BIGINT AS interval_months, state,
    state_before_cancellation, valuation_date, parent_payment_id::BIGINT AS
    parent_payment_id, refunded_cents::BIGINT AS refunded_cents, charged_back_cents::BIGINT
    AS charged_back_cents, iban, bic, payment_reference_code, transaction_id, payer_id,
    subscription_id, payer_status, provider_payment_status, created_at, updated_at
FROM payment
WHERE id = ANY($1::BIGINT[]);
