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
ON DUPLICATE KEY UPDATE
    donation_id = VALUES(donation_id),
    method = VALUES(method),
    amount_cents = VALUES(amount_cents),
    currency = VALUES(currency),
    interval_months = VALUES(interval_months),
    state = VALUES(state),
    state_before_cancellation = VALUES(state_before_cancellation),
    valuation_date = VALUES(valuation_date),
    parent_payment_id = VALUES(parent_payment_id),
    refunded_cents = VALUES(refunded_cents),
    charged_back_cents = VALUES(charged_back_cents),
    iban = VALUES(iban),
    bic = VALUES(bic),
    payment_reference_code = VALUES(payment_reference_code),
    transaction_id = VALUES(transaction_id),
    payer_id = VALUES(payer_id),
    subscription_id = VALUES(subscription_id),
    payer_status = VALUES(payer_status),
    provider_payment_status = VALUES(provider_payment_status),
    created_at = VALUES(created_at),
    updated_at = VALUES(updated_at);
