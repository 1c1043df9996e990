-- The membership read model: one row per application, its open moderation reasons, and the
-- `legacy_request` view for consumers of the legacy `request` table. As for donations, every
-- state is its own column (confirmed, moderation, cancellation, export, scrub) and the legacy
-- status code is derived in the view, never stored. Money is integer cents, timestamps are
-- RFC 3339 text in UTC.

CREATE TABLE membership_application (
    id                      INTEGER PRIMARY KEY CHECK (id >= 0),
    created_at              TEXT    NOT NULL,
    updated_at              TEXT    NOT NULL,
    -- person, company (kept after a scrub)
    applicant_kind          TEXT    NOT NULL DEFAULT '',
    -- active, sustaining
    membership_type         TEXT    NOT NULL DEFAULT '',
    fee_cents               INTEGER NOT NULL DEFAULT 0,
    interval_months         INTEGER NOT NULL DEFAULT 0 CHECK (interval_months >= 0),
    -- fee_cents * 12 / interval_months
    yearly_fee_cents        INTEGER NOT NULL DEFAULT 0,
    payment_id              INTEGER NOT NULL DEFAULT 0 CHECK (payment_id >= 0),
    -- Legacy codes: BEZ direct debit, UEB bank transfer, MCP credit card, PPL PayPal.
    payment_method          TEXT    NOT NULL DEFAULT '',
    -- The payment was complete at application (the legacy "confirmed"); moderation and
    -- cancellation do not change it.
    is_confirmed            INTEGER NOT NULL DEFAULT 0,
    -- none, open, approved
    moderation_state        TEXT    NOT NULL DEFAULT 'none',
    -- active, cancelled
    cancellation_state      TEXT    NOT NULL DEFAULT 'active',
    is_exported             INTEGER NOT NULL DEFAULT 0,
    exported_at             TEXT    NULL,
    export_batch            TEXT    NOT NULL DEFAULT '',
    is_scrubbed             INTEGER NOT NULL DEFAULT 0,
    scrubbed_at             TEXT    NULL,
    -- exported, cancelled_or_deleted, abandoned, stale_moderation
    scrub_rule              TEXT    NOT NULL DEFAULT '',
    -- Personal columns: from the unsealed applicant unit; '' without the key and after a scrub.
    salutation              TEXT    NOT NULL DEFAULT '',
    title                   TEXT    NOT NULL DEFAULT '',
    first_name              TEXT    NOT NULL DEFAULT '',
    last_name               TEXT    NOT NULL DEFAULT '',
    company_name            TEXT    NOT NULL DEFAULT '',
    street                  TEXT    NOT NULL DEFAULT '',
    postcode                TEXT    NOT NULL DEFAULT '',
    city                    TEXT    NOT NULL DEFAULT '',
    country                 TEXT    NOT NULL DEFAULT '',
    email                   TEXT    NOT NULL DEFAULT '',
    phone                   TEXT    NOT NULL DEFAULT '',
    -- YYYY-MM-DD or ''
    date_of_birth           TEXT    NOT NULL DEFAULT '',
    iban                    TEXT    NOT NULL DEFAULT '',
    bic                     TEXT    NOT NULL DEFAULT '',
    payment_reference_code  TEXT    NOT NULL DEFAULT '',
    -- Marketing tracking as the form sent it (not lowercased); kept after a scrub.
    campaign                TEXT    NOT NULL DEFAULT '',
    keyword                 TEXT    NOT NULL DEFAULT '',
    -- Incentive names joined by ',' (e.g. tote_bag).
    incentives              TEXT    NOT NULL DEFAULT '',
    wants_receipt           INTEGER NOT NULL DEFAULT 0,
    -- Whether the applicant answered the receipt question at all (legacy NULL otherwise).
    receipt_answered        INTEGER NOT NULL DEFAULT 0
);

CREATE INDEX membership_application_by_created_at ON membership_application (created_at);
CREATE INDEX membership_application_by_payment_id ON membership_application (payment_id);
CREATE INDEX membership_application_by_email ON membership_application (email) WHERE email <> '';
CREATE INDEX membership_application_by_last_name ON membership_application (last_name)
    WHERE last_name <> '';
CREATE INDEX membership_application_by_tracking ON membership_application (campaign, keyword);
CREATE INDEX membership_application_open_moderation ON membership_application (created_at)
    WHERE moderation_state = 'open';

-- Open moderation reasons; ModerationApproved deletes an application's rows.
CREATE TABLE membership_moderation_reason (
    membership_id          INTEGER NOT NULL CHECK (membership_id >= 0),
    moderation_identifier  TEXT    NOT NULL,
    source                 TEXT    NOT NULL DEFAULT '',
    PRIMARY KEY (membership_id, moderation_identifier, source)
);

-- The strangler view for consumers of the legacy `request` table (domain/wmde-memberships.md
-- §1.5, §1.7). status by the legacy precedence: moderated and cancelled -3, moderated -2,
-- cancelled -1, confirmed 1, otherwise 0. membership_fee is whole euros (cents cut off);
-- tracking is `campaign/keyword` ('' without both); timestamp and export are whole seconds.
-- Columns the ledger does not hold (account_number, bank_code, bank_name) are ''; backup is
-- NULL (the ledger keeps no separate personal-data backup).
CREATE VIEW legacy_request AS
SELECT
    m.id AS id,
    CASE
        WHEN m.moderation_state = 'open' AND m.cancellation_state = 'cancelled' THEN -3
        WHEN m.moderation_state = 'open' THEN -2
        WHEN m.cancellation_state = 'cancelled' THEN -1
        WHEN m.is_confirmed = 1 THEN 1
        ELSE 0
    END AS status,
    datetime(m.created_at) AS timestamp,
    CASE
        WHEN m.is_scrubbed = 1 THEN ''
        WHEN m.applicant_kind = 'company' THEN 'Firma'
        ELSE m.salutation
    END AS anrede,
    m.title AS titel,
    m.company_name AS firma,
    TRIM(m.first_name || ' ' || m.last_name) AS name,
    m.first_name AS vorname,
    m.last_name AS nachname,
    m.street AS strasse,
    m.postcode AS plz,
    m.city AS ort,
    m.country AS country,
    m.email AS email,
    m.phone AS phone,
    NULLIF(m.date_of_birth, '') AS dob,
    m.membership_type AS membership_type,
    m.payment_method AS payment_type,
    m.fee_cents / 100 AS membership_fee,
    m.interval_months AS membership_fee_interval,
    '' AS account_number,
    '' AS bank_code,
    '' AS bank_name,
    m.iban AS iban,
    m.bic AS bic,
    datetime(m.exported_at) AS export,
    NULL AS backup,
    CASE
        WHEN m.campaign = '' AND m.keyword = '' THEN ''
        ELSE m.campaign || '/' || m.keyword
    END AS tracking,
    CASE WHEN m.receipt_answered = 1 THEN m.wants_receipt END AS donation_receipt,
    m.payment_id AS payment_id,
    m.is_scrubbed AS is_scrubbed
FROM membership_application AS m;
