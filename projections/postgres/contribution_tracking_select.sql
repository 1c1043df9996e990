-- Loads the current contribution_tracking rows a batch touches, before the batch is folded in memory.
SELECT
    id::BIGINT AS id, contribution_id::BIGINT AS contribution_id, allocation_token,
    amount::TEXT AS amount, currency, usd_amount::TEXT AS usd_amount, is_recurring,
    referrer, utm_medium, utm_campaign, utm_key, gateway, appeal, payments_form_variant,
    banner, landing_page, payment_method_id::BIGINT AS payment_method_id,
    payment_submethod_id::BIGINT AS payment_submethod_id, language, country, tracking_date,
    os, os_version, browser, browser_version, recurring_choice_id::BIGINT AS
    recurring_choice_id, device_type_id::BIGINT AS device_type_id, banner_size_id::BIGINT AS
    banner_size_id, is_test_variant, banner_variant, is_pay_fee, mailing_identifier,
    utm_source, banner_history_log_id, screen_width::BIGINT AS screen_width,
    screen_height::BIGINT AS screen_height, app_install_id
FROM contribution_tracking
WHERE id = ANY($1::BIGINT[]);
