-- Loads the current payment rows a batch touches, before the batch is folded in memory.
-- ?1 is a JSON array of ids.
SELECT
    id, donation_id, method, amount_cents, currency, interval_months, state,
    state_before_cancellation, valuation_date, parent_payment_id, refunded_cents,
    charged_back_cents, iban, bic, payment_reference_code, transaction_id, payer_id,
    subscription_id, payer_status, provider_payment_status, created_at, updated_at
FROM payment
WHERE id IN (SELECT value FROM json_each(?1));
