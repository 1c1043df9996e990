-- Read model of the donation ledger (MariaDB). Every row here is disposable: `ledger rebuild`
-- recreates it from the event log. English names; the legacy German names exist only in the
-- `legacy_spenden` view at the end. Ids are non-negative (CHECK), money is integer cents,
-- timestamps are DATETIME(6) in UTC (the connection's time zone is +00:00). MariaDB has
-- unsigned integers, but signed BIGINT with CHECK (x >= 0) keeps the same range as the other
-- dialects (and as the event log's i64). State columns are independent: no column overwrites
-- another aspect of a donation.
--
-- Text is utf8mb4 with the collation utf8mb4_unicode_ci (the database's and every table's
-- default), so the back office's queries compare names as people do. Key columns the projector
-- looks rows up by (tracking pairs, moderation reasons, projector names) are utf8mb4_nopad_bin:
-- a case-, accent- or trailing-space-insensitive key would merge values the events keep apart.
-- One-line text is VARCHAR(255) (VARCHAR(256) for the actor; the admission rules refuse a
-- longer value before it gets here); the comment, the free texts of conflicts and what a skip
-- records of an event are TEXT.
--
-- MariaDB has no partial indexes. Where PostgreSQL and SQLite index a subset of the rows, this
-- schema indexes the whole column, except for the two selections that must cost in proportion
-- to their candidates (scrub candidates, open moderation): there a virtual generated column is
-- the creation time exactly for the rows of the subset and NULL otherwise, and its index holds
-- the candidates in creation order after the NULLs.

-- Normalised marketing tracking: lowercased campaign and keyword, one row per pair.
CREATE TABLE donation_tracking (
    id        BIGINT PRIMARY KEY CHECK (id >= 0),
    campaign  VARCHAR(255) COLLATE utf8mb4_nopad_bin NOT NULL DEFAULT '',
    keyword   VARCHAR(255) COLLATE utf8mb4_nopad_bin NOT NULL DEFAULT '',
    UNIQUE KEY donation_tracking_pair (campaign, keyword)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

CREATE TABLE donation (
    id                        BIGINT PRIMARY KEY CHECK (id >= 0),
    created_at                DATETIME(6) NOT NULL,
    updated_at                DATETIME(6) NOT NULL,
    amount_cents              BIGINT  NOT NULL DEFAULT 0,
    currency                  VARCHAR(255) NOT NULL DEFAULT '',
    interval_months           INTEGER NOT NULL DEFAULT 0 CHECK (interval_months >= 0),
    payment_id                BIGINT  NOT NULL DEFAULT 0 CHECK (payment_id >= 0),
    -- Legacy codes: BEZ direct debit, UEB bank transfer, MCP credit card, PPL PayPal, SUB Sofort.
    payment_method            VARCHAR(255) NOT NULL DEFAULT '',
    -- pending, booked, failed, cancelled, refunded, charged_back (mirrors payment.state).
    payment_state             VARCHAR(255) NOT NULL DEFAULT 'pending',
    -- The payment's valuation date: set once a provider booked it, kept after a scrub.
    payment_booked_at         DATETIME(6) NULL,
    -- active, cancelled_by_donor, deleted_by_admin
    deletion_state            VARCHAR(255) NOT NULL DEFAULT 'active',
    -- none, open, approved
    moderation_state          VARCHAR(255) NOT NULL DEFAULT 'none',
    is_exported               BOOLEAN NOT NULL DEFAULT FALSE,
    exported_at               DATETIME(6) NULL,
    export_batch              VARCHAR(255) NOT NULL DEFAULT '',
    is_scrubbed               BOOLEAN NOT NULL DEFAULT FALSE,
    scrubbed_at               DATETIME(6) NULL,
    -- exported, cancelled_or_deleted, abandoned, stale_moderation
    scrub_rule                VARCHAR(255) NOT NULL DEFAULT '',
    -- person, company, email_only, anonymous (kept after a scrub)
    donor_kind                VARCHAR(255) NOT NULL DEFAULT '',
    salutation                VARCHAR(255) NOT NULL DEFAULT '',
    title                     VARCHAR(255) NOT NULL DEFAULT '',
    first_name                VARCHAR(255) NOT NULL DEFAULT '',
    last_name                 VARCHAR(255) NOT NULL DEFAULT '',
    company_name              VARCHAR(255) NOT NULL DEFAULT '',
    street                    VARCHAR(255) NOT NULL DEFAULT '',
    postcode                  VARCHAR(255) NOT NULL DEFAULT '',
    city                      VARCHAR(255) NOT NULL DEFAULT '',
    country                   VARCHAR(255) NOT NULL DEFAULT '',
    email                     VARCHAR(255) NOT NULL DEFAULT '',
    wants_newsletter          BOOLEAN NOT NULL DEFAULT FALSE,
    wants_receipt             BOOLEAN NOT NULL DEFAULT FALSE,
    -- The public text when comment_is_public, else the private text ('' once scrubbed).
    comment                   TEXT    NOT NULL DEFAULT '',
    comment_is_public         BOOLEAN NOT NULL DEFAULT FALSE,
    comment_display_name      VARCHAR(255) NOT NULL DEFAULT '',
    tracking_id               BIGINT  NULL,
    campaign                  VARCHAR(255) NOT NULL DEFAULT '',
    keyword                   VARCHAR(255) NOT NULL DEFAULT '',
    impression_count          INTEGER NOT NULL DEFAULT 0 CHECK (impression_count >= 0),
    banner_impression_count   INTEGER NOT NULL DEFAULT 0 CHECK (banner_impression_count >= 0),
    contribution_tracking_id  BIGINT  NOT NULL DEFAULT 0 CHECK (contribution_tracking_id >= 0),
    parent_donation_id        BIGINT  NOT NULL DEFAULT 0 CHECK (parent_donation_id >= 0),
    -- Scrub candidates: not scrubbed and (exported, or cancelled/deleted, or external and still
    -- pending). Small because nearly every old donation is scrubbed; the scrub selection reads
    -- the non-NULL part of its index.
    scrub_candidate_since     DATETIME(6) AS (
        CASE WHEN is_scrubbed = 0
                  AND (is_exported = 1
                       OR deletion_state <> 'active'
                       OR (payment_state = 'pending' AND payment_method IN ('MCP', 'PPL', 'SUB')))
             THEN created_at END) VIRTUAL,
    -- Donations under moderation.
    open_moderation_since     DATETIME(6) AS (
        CASE WHEN moderation_state = 'open' THEN created_at END) VIRTUAL,
    CONSTRAINT donation_tracking_fk FOREIGN KEY (tracking_id) REFERENCES donation_tracking (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

CREATE INDEX donation_by_created_at ON donation (created_at);
CREATE INDEX donation_by_payment_id ON donation (payment_id);
CREATE INDEX donation_by_email ON donation (email);
CREATE INDEX donation_by_last_name ON donation (last_name);
CREATE INDEX donation_by_tracking_id ON donation (tracking_id);
CREATE INDEX donation_by_parent ON donation (parent_donation_id);
CREATE INDEX donation_open_moderation ON donation (open_moderation_since);
CREATE INDEX donation_public_comments ON donation (comment_is_public, created_at);
CREATE INDEX donation_scrub_candidates ON donation (scrub_candidate_since);

-- Open moderation reasons; ModerationApproved deletes a donation's rows.
CREATE TABLE donation_moderation_reason (
    donation_id            BIGINT  NOT NULL CHECK (donation_id >= 0),
    moderation_identifier  VARCHAR(255) COLLATE utf8mb4_nopad_bin NOT NULL,
    source                 VARCHAR(255) COLLATE utf8mb4_nopad_bin NOT NULL DEFAULT '',
    PRIMARY KEY (donation_id, moderation_identifier, source)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

-- One row per payment. Method-specific columns are '' where they do not apply.
CREATE TABLE payment (
    id                         BIGINT PRIMARY KEY CHECK (id >= 0),
    donation_id                BIGINT  NOT NULL CHECK (donation_id >= 0),
    method                     VARCHAR(255) NOT NULL DEFAULT '',
    amount_cents               BIGINT  NOT NULL DEFAULT 0,
    currency                   VARCHAR(255) NOT NULL DEFAULT '',
    interval_months            INTEGER NOT NULL DEFAULT 0 CHECK (interval_months >= 0),
    state                      VARCHAR(255) NOT NULL DEFAULT 'pending',
    -- The state a cancellation interrupted, restored by PaymentRestored; '' otherwise.
    state_before_cancellation  VARCHAR(255) NOT NULL DEFAULT '',
    valuation_date             DATETIME(6) NULL,
    parent_payment_id          BIGINT  NOT NULL DEFAULT 0 CHECK (parent_payment_id >= 0),
    refunded_cents             BIGINT  NOT NULL DEFAULT 0,
    charged_back_cents         BIGINT  NOT NULL DEFAULT 0,
    -- BEZ
    iban                       VARCHAR(255) NOT NULL DEFAULT '',
    bic                        VARCHAR(255) NOT NULL DEFAULT '',
    -- UEB, SUB
    payment_reference_code     VARCHAR(255) NOT NULL DEFAULT '',
    -- MCP, PPL, SUB (provider data)
    transaction_id             VARCHAR(255) NOT NULL DEFAULT '',
    payer_id                   VARCHAR(255) NOT NULL DEFAULT '',
    subscription_id            VARCHAR(255) NOT NULL DEFAULT '',
    payer_status               VARCHAR(255) NOT NULL DEFAULT '',
    provider_payment_status    VARCHAR(255) NOT NULL DEFAULT '',
    created_at                 DATETIME(6) NOT NULL,
    updated_at                 DATETIME(6) NOT NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

CREATE INDEX payment_by_donation ON payment (donation_id);
CREATE INDEX payment_by_transaction_id ON payment (transaction_id);
CREATE INDEX payment_by_reference_code ON payment (payment_reference_code);
CREATE INDEX payment_by_parent ON payment (parent_payment_id);

-- Who changed what: one row per event that touched a donation.
CREATE TABLE donation_event (
    donation_id  BIGINT  NOT NULL CHECK (donation_id >= 0),
    position     BIGINT  NOT NULL CHECK (position >= 0),
    stream       VARCHAR(255) NOT NULL,
    event_type   VARCHAR(255) NOT NULL,
    actor_kind   VARCHAR(255) NOT NULL,
    actor_id     VARCHAR(256) NOT NULL,
    occurred_at  DATETIME(6) NOT NULL,
    PRIMARY KEY (donation_id, position)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

CREATE INDEX donation_event_by_position ON donation_event (position);

-- WMF's civicrm_contribution_tracking, keyed on a pre-allocated id. NULL = not sent yet.
CREATE TABLE contribution_tracking (
    id                     BIGINT PRIMARY KEY CHECK (id >= 0),
    contribution_id        BIGINT  NULL CHECK (contribution_id >= 0),
    allocation_token       VARCHAR(255) NOT NULL DEFAULT '',
    amount                 DECIMAL(20, 3) NULL,
    currency               VARCHAR(255) NULL,
    usd_amount             DECIMAL(20, 2) NULL,
    is_recurring           BOOLEAN NULL,
    referrer               VARCHAR(255) NULL,
    utm_medium             VARCHAR(255) NULL,
    utm_campaign           VARCHAR(255) NULL,
    utm_key                VARCHAR(255) NULL,
    gateway                VARCHAR(255) NULL,
    appeal                 VARCHAR(255) NULL,
    payments_form_variant  VARCHAR(255) NULL,
    banner                 VARCHAR(255) NULL,
    landing_page           VARCHAR(255) NULL,
    payment_method_id      INTEGER NULL,
    payment_submethod_id   INTEGER NULL,
    language               VARCHAR(255) NULL,
    country                VARCHAR(255) NULL,
    tracking_date          DATETIME(6) NULL,
    os                     VARCHAR(255) NULL,
    os_version             VARCHAR(255) NULL,
    browser                VARCHAR(255) NULL,
    browser_version        VARCHAR(255) NULL,
    recurring_choice_id    INTEGER NULL,
    device_type_id         INTEGER NULL,
    banner_size_id         INTEGER NULL,
    is_test_variant        BOOLEAN NULL,
    banner_variant         VARCHAR(255) NULL,
    is_pay_fee             BOOLEAN NULL,
    mailing_identifier     VARCHAR(255) NULL,
    utm_source             VARCHAR(255) NULL,
    banner_history_log_id  VARCHAR(255) NULL,
    screen_width           BIGINT  NULL CHECK (screen_width >= 0),
    screen_height          BIGINT  NULL CHECK (screen_height >= 0),
    app_install_id         VARCHAR(255) NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

CREATE INDEX contribution_tracking_by_contribution ON contribution_tracking (contribution_id);
CREATE INDEX contribution_tracking_by_currency ON contribution_tracking (currency);
CREATE INDEX contribution_tracking_by_utm_medium ON contribution_tracking (utm_medium);
CREATE INDEX contribution_tracking_by_utm_campaign ON contribution_tracking (utm_campaign);
CREATE INDEX contribution_tracking_by_utm_source ON contribution_tracking (utm_source);
CREATE INDEX contribution_tracking_by_banner ON contribution_tracking (banner);
CREATE INDEX contribution_tracking_by_landing_page ON contribution_tracking (landing_page);
CREATE INDEX contribution_tracking_by_payment_method ON contribution_tracking (payment_method_id);
CREATE INDEX contribution_tracking_by_language ON contribution_tracking (language);
CREATE INDEX contribution_tracking_by_country ON contribution_tracking (country);
CREATE INDEX contribution_tracking_by_tracking_date ON contribution_tracking (tracking_date);
CREATE INDEX contribution_tracking_by_mailing ON contribution_tracking (mailing_identifier);
CREATE INDEX contribution_tracking_by_banner_history ON contribution_tracking (banner_history_log_id);

-- Refused changes: kind 'contribution_id_change' (first contribution id wins) or
-- 'allocation_collision' (a second allocation of the same id, its fields not merged).
CREATE TABLE contribution_tracking_conflict (
    position                  BIGINT PRIMARY KEY CHECK (position >= 0),
    contribution_tracking_id  BIGINT  NOT NULL CHECK (contribution_tracking_id >= 0),
    kind                      VARCHAR(255) NOT NULL,
    existing                  TEXT    NOT NULL,
    attempted                 TEXT    NOT NULL,
    at                        DATETIME(6) NOT NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

CREATE INDEX contribution_tracking_conflict_by_id
    ON contribution_tracking_conflict (contribution_tracking_id);

-- The last position a projector applied; NULL before its first event. Written in the same
-- transaction as the rows.
CREATE TABLE projector_checkpoint (
    projector   VARCHAR(255) COLLATE utf8mb4_nopad_bin PRIMARY KEY,
    position    BIGINT  NULL CHECK (position >= 0),
    updated_at  DATETIME(6) NOT NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

-- Events an operator told a projector to pass over (`ledger project --skip`).
CREATE TABLE projector_skipped_event (
    projector   VARCHAR(255) COLLATE utf8mb4_nopad_bin NOT NULL,
    position    BIGINT  NOT NULL CHECK (position >= 0),
    -- Any writer's stream and type names: TEXT, whatever their length.
    stream      TEXT    NOT NULL,
    event_type  TEXT    NOT NULL,
    reason      TEXT    NOT NULL,
    skipped_by  VARCHAR(255) NOT NULL,
    at          DATETIME(6) NOT NULL,
    PRIMARY KEY (projector, position)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

-- The strangler view for consumers of the legacy `spenden` table. The status letter is
-- derived from the independent state columns (domain/wmde.md, derivation table): cancelled or
-- deleted D; else open moderation P; else BEZ N, UEB Z, SUB booked Z, SUB not booked X,
-- MCP/PPL booked B, MCP/PPL not booked X. "Booked" means the provider set a valuation date,
-- which a scrub keeps, so a scrubbed donation keeps the letter it had. dt_new and dt_gruen are
-- DATETIME in whole seconds, as the legacy columns were.
CREATE VIEW legacy_spenden AS
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
        WHEN d.is_scrubbed = 1 THEN ''
        WHEN d.donor_kind = 'anonymous' THEN 'Anonym'
        WHEN d.donor_kind = 'company' THEN d.company_name
        ELSE CONCAT_WS(' ', NULLIF(d.title, ''), NULLIF(d.first_name, ''), NULLIF(d.last_name, ''))
    END AS name,
    d.city AS ort,
    d.email AS email,
    CAST(d.wants_newsletter AS SIGNED) AS info,
    CAST(d.wants_receipt AS SIGNED) AS bescheinigung,
    d.comment_display_name AS eintrag,
    CONCAT(d.amount_cents DIV 100, '.', LPAD(d.amount_cents MOD 100, 2, '0')) AS betrag,
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
    CAST(d.comment_is_public AS SIGNED) AS is_public,
    d.is_scrubbed AS is_scrubbed,
    CAST(d.created_at AS DATETIME) AS dt_new,
    CAST(NULL AS DATETIME) AS dt_del,
    CAST(d.exported_at AS DATETIME) AS dt_gruen,
    d.payment_id AS payment_id,
    d.tracking_id AS tracking_id,
    d.impression_count AS impression_count,
    d.banner_impression_count AS banner_impression_count
FROM donation AS d
LEFT JOIN payment AS p ON p.id = d.payment_id;
