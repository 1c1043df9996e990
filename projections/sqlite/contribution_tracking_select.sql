-- Loads the current contribution_tracking rows a batch touches, before the batch is folded in memory.
-- ?1 is a JSON array of ids.
SELECT
    id, contribution_id, allocation_token, amount, currency, usd_amount, is_recurring,
    referrer, utm_medium, utm_campaign, utm_key, gateway, appeal, payments_form_variant,
    banner, landing_page, payment_method_id, payment_submethod_id, language, country,
    tracking_date, os, os_version, browser, browser_version, recurring_choice_id,
    device_type_id, banner_size_id, is_test_variant, banner_variant, is_pay_fee,
    mailing_identifier, utm_source, banner_history_log_id, screen_width, screen_height,
    app_install_id
FROM contribution_tracking
WHERE id IN (SELECT value FROM json_each(?1));
