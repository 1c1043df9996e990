-- Loads the current contribution_tracking rows a batch touches, before the batch is folded in memory.
-- ? is a JSON array of ids, read by JSON_TABLE; STRAIGHT_JOIN reads the ids first and looks
-- each row up by its primary key.
SELECT STRAIGHT_JOIN
    t.id, t.contribution_id, t.allocation_token, CAST(t.amount AS CHAR) AS amount, t.currency, CAST(t.usd_amount AS CHAR) AS usd_amount, t.is_recurring,
    t.referrer, t.utm_medium, t.utm_campaign, t.utm_key, t.gateway, t.appeal, t.payments_form_variant,
    t.banner, t.landing_page, t.payment_method_id, t.payment_submethod_id, t.language, t.country,
    t.tracking_date, t.os, t.os_version, t.browser, t.browser_version, t.recurring_choice_id,
    t.device_type_id, t.banner_size_id, t.is_test_variant, t.banner_variant, t.is_pay_fee,
    t.mailing_identifier, t.utm_source, t.banner_history_log_id, t.screen_width, t.screen_height,
    t.app_install_id
FROM (SELECT DISTINCT id FROM JSON_TABLE(?, '$[*]' COLUMNS (id BIGINT PATH '$')) AS j0) AS j
JOIN contribution_tracking AS t ON t.id = j.id;
