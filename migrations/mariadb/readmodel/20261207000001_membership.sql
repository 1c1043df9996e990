-- The membership read model: one row per application, its open moderation reasons, and the
-- `legacy_request` view for consumers of the legacy `request` table. As for donations, every
-- state is its own column (confirmed, moderation, cancellation, export, scrub) and the legacy
-- status code is derived in the view, never stored. Money is integer cents, timestamps are
-- DATETIME(6) in UTC. MariaDB has no partial indexes: these cover every row;
-- key text columns are utf8mb4_nopad_bin (byte order), as for donations.

CREATE TABLE membership_application (
    id                      BIGINT PRIMARY KEY CHECK (id >= 0),
    created_at              DATETIME(6) NOT NULL,
    updated_at              DATETIME(6) NOT NULL,
    -- person, company (kept after a scrub)
    applicant_kind          VARCHAR(255) NOT NULL DEFAULT '',
    -- active, sustaining
    membership_type         VARCHAR(255) NOT NULL DEFAULT '',
    fee_cents               BIGINT NOT NULL DEFAULT 0,
    interval_months         INTEGER NOT NULL DEFAULT 0 CHECK (interval_months >= 0),
    -- fee_cents * 12 / interval_months
    yearly_fee_cents        BIGINT NOT NULL DEFAULT 0,
    payment_id              BIGINT NOT NULL DEFAULT 0 CHECK (payment_id >= 0),
    -- Legacy codes: BEZ direct debit, UEB bank transfer, MCP credit card, PPL PayPal.
    payment_method          VARCHAR(255) NOT NULL DEFAULT '',
    -- The payment was complete at application (the legacy "confirmed"); moderation and
    -- cancellation do not change it.
    is_confirmed            BOOLEAN NOT NULL DEFAULT FALSE,
    -- none, open, approved
    moderation_state        VARCHAR(255) NOT NULL DEFAULT 'none',
    -- active, cancelled
    cancellation_state      VARCHAR(255) NOT NULL DEFAULT 'active',
    is_exported             BOOLEAN NOT NULL DEFAULT FALSE,
    exported_at             DATETIME(6) NULL,
    export_batch            VARCHAR(255) NOT NULL DEFAULT '',
    is_scrubbed             BOOLEAN NOT NULL DEFAULT FALSE,
    scrubbed_at             DATETIME(6) NULL,
    -- exported, cancelled_or_deleted, abandoned, stale_moderation
    scrub_rule              VARCHAR(255) NOT NULL DEFAULT '',
    -- Personal columns: from the unsealed applicant unit; '' without the key and after a scrub.
    salutation              VARCHAR(255) NOT NULL DEFAULT '',
    title                   VARCHAR(255) NOT NULL DEFAULT '',
    first_name              VARCHAR(255) NOT NULL DEFAULT '',
    last_name               VARCHAR(255) NOT NULL DEFAULT '',
    company_name            VARCHAR(255) NOT NULL DEFAULT '',
    street                  VARCHAR(255) NOT NULL DEFAULT '',
    postcode                VARCHAR(255) NOT NULL DEFAULT '',
    city                    VARCHAR(255) NOT NULL DEFAULT '',
    country                 VARCHAR(255) NOT NULL DEFAULT '',
    email                   VARCHAR(255) NOT NULL DEFAULT '',
    phone                   VARCHAR(255) NOT NULL DEFAULT '',
    -- YYYY-MM-DD or ''
    date_of_birth           VARCHAR(255) NOT NULL DEFAULT '',
    iban                    VARCHAR(255) NOT NULL DEFAULT '',
    bic                     VARCHAR(255) NOT NULL DEFAULT '',
    payment_reference_code  VARCHAR(255) NOT NULL DEFAULT '',
    -- Marketing tracking as the form sent it (not lowercased); kept after a scrub.
    campaign                VARCHAR(255) NOT NULL DEFAULT '',
    keyword                 VARCHAR(255) NOT NULL DEFAULT '',
    -- Incentive names joined by ',' (e.g. tote_bag).
    incentives              TEXT NOT NULL DEFAULT '',
    wants_receipt           BOOLEAN NOT NULL DEFAULT FALSE,
    -- Whether the applicant answered the receipt question at all (legacy NULL otherwise).
    receipt_answered        BOOLEAN NOT NULL DEFAULT FALSE
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

CREATE INDEX membership_application_by_created_at ON membership_application (created_at);
CREATE INDEX membership_application_by_payment_id ON membership_application (payment_id);
CREATE INDEX membership_application_by_email ON membership_application (email);
CREATE INDEX membership_application_by_last_name ON membership_application (last_name);
CREATE INDEX membership_application_by_tracking ON membership_application (campaign, keyword);
CREATE INDEX membership_application_open_moderation
    ON membership_application (moderation_state, created_at);

-- Open moderation reasons; ModerationApproved deletes an application's rows.
CREATE TABLE membership_moderation_reason (
    membership_id          BIGINT NOT NULL CHECK (membership_id >= 0),
    moderation_identifier  VARCHAR(255) COLLATE utf8mb4_nopad_bin NOT NULL,
    source                 VARCHAR(255) COLLATE utf8mb4_nopad_bin NOT NULL DEFAULT '',
    PRIMARY KEY (membership_id, moderation_identifier, source)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

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
        WHEN m.is_confirmed THEN 1
        ELSE 0
    END AS status,
    CAST(m.created_at AS DATETIME) AS timestamp,
    CASE
        WHEN m.is_scrubbed THEN ''
        WHEN m.applicant_kind = 'company' THEN 'Firma'
        ELSE m.salutation
    END AS anrede,
    m.title AS titel,
    m.company_name AS firma,
    TRIM(CONCAT(m.first_name, ' ', m.last_name)) AS name,
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
    m.fee_cents DIV 100 AS membership_fee,
    m.interval_months AS membership_fee_interval,
    '' AS account_number,
    '' AS bank_code,
    '' AS bank_name,
    m.iban AS iban,
    m.bic AS bic,
    CAST(m.exported_at AS DATETIME) AS export,
    CAST(NULL AS DATETIME) AS backup,
    CASE
        WHEN m.campaign = '' AND m.keyword = '' THEN ''
        ELSE CONCAT(m.campaign, '/', m.keyword)
    END AS tracking,
    CASE WHEN m.receipt_answered THEN CAST(m.wants_receipt AS SIGNED) END AS donation_receipt,
    m.payment_id AS payment_id,
    m.is_scrubbed AS is_scrubbed
FROM membership_application AS m;
