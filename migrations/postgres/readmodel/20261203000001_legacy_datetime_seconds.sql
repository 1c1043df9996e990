-- The legacy `spenden` columns dt_new and dt_gruen were MySQL DATETIME: whole seconds. The
-- SQLite view renders them so (`datetime()`); this view kept the microseconds, so the two
-- dialects' compatibility views disagreed (found comparing a PostgreSQL rebuild with a SQLite
-- one). Same columns and types, the times cut to the second.
CREATE OR REPLACE VIEW legacy_spenden AS
SELECT
    d.id AS id,
    CASE
        WHEN d.deletion_state <> 'active' THEN 'D'
        WHEN d.moderation_state = 'open' THEN 'P'
        WHEN d.payment_method = 'BEZ' THEN 'N'
        WHEN d.payment_method = 'UEB' THEN 'Z'
        WHEN d.payment_method = 'SUB' AND d.payment_booked_at IS NOT NULL THEN 'Z'
        WHEN d.payment_method = 'SUB' THEN 'X'
        WHEN d.payment_method IN ('MCP', 'PPL') AND d.payment_booked_at IS NOT NULL THEN 'B'
        WHEN d.payment_method IN ('MCP', 'PPL') THEN 'X'
        ELSE '?'
    END AS status,
    CASE
        WHEN d.is_scrubbed THEN ''
        WHEN d.donor_kind = 'anonymous' THEN 'Anonym'
        WHEN d.donor_kind = 'company' THEN d.company_name
        ELSE CONCAT_WS(' ', NULLIF(d.title, ''), NULLIF(d.first_name, ''), NULLIF(d.last_name, ''))
    END AS name,
    d.city AS ort,
    d.email AS email,
    d.wants_newsletter::INTEGER AS info,
    d.wants_receipt::INTEGER AS bescheinigung,
    d.comment_display_name AS eintrag,
    (d.amount_cents / 100)::TEXT || '.' || LPAD((d.amount_cents % 100)::TEXT, 2, '0') AS betrag,
    d.interval_months AS periode,
    d.payment_method AS zahlweise,
    d.comment AS kommentar,
    COALESCE(p.payment_reference_code, '') AS ueb_code,
    CASE d.donor_kind
        WHEN 'person' THEN 'person'
        WHEN 'company' THEN 'firma'
        WHEN 'email_only' THEN 'email'
        WHEN 'anonymous' THEN 'anonym'
        ELSE ''
    END AS adresstyp,
    d.comment_is_public::INTEGER AS is_public,
    d.is_scrubbed AS is_scrubbed,
    date_trunc('second', d.created_at AT TIME ZONE 'UTC') AS dt_new,
    NULL::TIMESTAMP AS dt_del,
    date_trunc('second', d.exported_at AT TIME ZONE 'UTC') AS dt_gruen,
    d.payment_id AS payment_id,
    d.tracking_id AS tracking_id,
    d.impression_count AS impression_count,
    d.banner_impression_count AS banner_impression_count
FROM donation AS d
LEFT JOIN payment AS p ON p.id = d.payment_id;
