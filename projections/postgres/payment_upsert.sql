-- Writes the folded rows of the payments a batch touched.
-- One statement per batch: every column is bound as an array ($1 = all ids, ...) and
-- UNNEST turns the arrays back into rows.
INSERT INTO payment (
    id, donation_id, method, amount_cents, currency, interval_months, state,
    state_before_cancellation, valuation_date, parent_payment_id, refunded_cents,
    charged_back_cents, iban, bic, payment_reference_code, transaction_id, payer_id,
    subscription_id, payer_status, provider_payment_status, created_at, updated_at
)
SELECT
    u.id, u.donation_id, u.method, u.amount_cents, u.currency, u.interval_months, u.state,
    u.state_before_cancellation, u.valuation_date, u.parent_payment_id, u.refunded_cents,
    u.charged_back_cents, u.iban, u.bic, u.payment_reference_code, u.transaction_id,
    u.payer_id, u.subscription_id, u.payer_status, u.provider_payment_status, u.created_at,
    u.updated_at
FROM UNNEST(
    $1::BIGINT[],
    $2::BIGINT[],
    $3::TEXT[],
    $4::BIGINT[],
    $5::TEXT[],
    $6::BIGINT[],
    $7::TEXT[],
    $8::TEXT[],
    $9::TIMESTAMPTZ[],
    $10::BIGINT[],
    $11::BIGINT[],
    $12::BIGINT[],
    $13::TEXT[],
    $14::TEXT[],
    $15::TEXT[],
    $16::TEXT[],
    $17::TEXT[],
    $18::TEXT[],
    $19::TEXT[],
    $20::TEXT[],
    $21::TIMESTAMPTZ[],
    $22::TIMESTAMPTZ[]
) AS u (
    id, donation_id, method, amount_cents, currency, interval_months, state,
    state_before_cancellation, valuation_date, parent_payment_id, refunded_cents,
    charged_back_cents, iban, bic, payment_reference_code, transaction_id, payer_id,
    subscription_id, payer_status, provider_payment_status, created_at, updated_at
)
ON CONFLICT (id) DO UPDATE SET
    donation_id = EXCLUDED.donation_id,
    method = EXCLUDED.method,
    amount_cents = EXCLUDED.amount_cents,
    currency = EXCLUDED.currency,
    interval_months = EXCLUDED.interval_months,
    state = EXCLUDED.state,
    state_before_cancellation = EXCLUDED.state_before_cancellation,
    valuation_date = EXCLUDED.valuation_date,
    parent_payment_id = EXCLUDED.parent_payment_id,
    refunded_cents = EXCLUDED.refunded_cents,
    charged_back_cents = EXCLUDED.charged_back_cents,
    iban = EXCLUDED.iban,
    bic = EXCLUDED.bic,
    payment_reference_code = EXCLUDED.payment_reference_code,
    transaction_id = EXCLUDED.transaction_id,
    payer_id = EXCLUDED.payer_id,
    subscription_id = EXCLUDED.subscription_id,
    payer_status = EXCLUDED.payer_status,
    provider_payment_status = EXCLUDED.provider_payment_status,
    created_at = EXCLUDED.created_at,
    updated_at = EXCLUDED.updated_at;
