-- Writes the folded rows of the payments a batch touched.
-- The projector repeats the VALUES tuple once per row (multi-row insert, one statement
-- per chunk of rows), binding the columns in the order listed.
INSERT INTO payment (
    id, donation_id, method, amount_cents, currency, interval_months, state,
    state_before_cancellation, valuation_date, parent_payment_id, refunded_cents,
    charged_back_cents, iban, bic, payment_reference_code, transaction_id, payer_id,
    subscription_id, payer_status, provider_payment_status, created_at, updated_at
)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (id) DO UPDATE SET
    donation_id = excluded.donation_id,
    method = excluded.method,
    amount_cents = excluded.amount_cents,
    currency = excluded.currency,
    interval_months = excluded.interval_months,
    state = excluded.state,
    state_before_cancellation = excluded.state_before_cancellation,
    valuation_date = excluded.valuation_date,
    parent_payment_id = excluded.parent_payment_id,
    refunded_cents = excluded.refunded_cents,
    charged_back_cents = excluded.charged_back_cents,
    iban = excluded.iban,
    bic = excluded.bic,
    payment_reference_code = excluded.payment_reference_code,
    transaction_id = excluded.transaction_id,
    payer_id = excluded.payer_id,
    subscription_id = excluded.subscription_id,
    payer_status = excluded.payer_status,
    provider_payment_status = excluded.provider_payment_status,
    created_at = excluded.created_at,
    updated_at = excluded.updated_at;
