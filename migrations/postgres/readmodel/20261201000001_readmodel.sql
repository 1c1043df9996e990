-- Read model of the donation ledger (PostgreSQL). Every row here is disposable: `ledger rebuild`
-- recreates it from the event log. English names; the legacy German names exist only in the
-- `legacy_spenden` view at the end. Ids are non-negative (CHECK), money is integer cents,
-- timestamps are TIMESTAMPTZ. PostgreSQL has no unsigned integers, hence BIGINT with
-- CHECK (x >= 0). State columns are independent: no column overwrites another aspect of a
-- donation. Tables live in the schema the connection's search_path names (`readmodel`; a
-- rebuild fills `readmodel_new` and renames it over `readmodel` in one transaction).

-- Normalised marketing tracking: lowercased campaign and keyword, one row per pair.
CREATE TABLE donation_tracking (
    id        BIGINT PRIMARY KEY CHECK (id >= 0),
    campaign  TEXT    NOT NULL DEFAULT '',
    keyword   TEXT    NOT NULL DEFAULT '',
    UNIQUE (campaign, keyword)
);

CREATE TABLE donation (
    id                        BIGINT PRIMARY KEY CHECK (id >= 0),
    created_at                TIMESTAMPTZ NOT NULL,
    updated_at                TIMESTAMPTZ NOT NULL,
    amount_cents              BIGINT  NOT NULL DEFAULT 0,
    currency                  TEXT    NOT NULL DEFAULT '',
    interval_months           INTEGER NOT NULL DEFAULT 0 CHECK (interval_months >= 0),
    payment_id                BIGINT  NOT NULL DEFAULT 0 CHECK (payment_id >= 0),
    -- Legacy codes: BEZ direct debit, UEB bank transfer, MCP credit card, PPL PayPal, SUB Sofort.
    payment_method            TEXT    NOT NULL DEFAULT '',
    -- pending, booked, failed, cancelled, refunded, charged_back (mirrors payment.state).
    payment_state             TEXT    NOT NULL DEFAULT 'pending',
    -- The payment's valuation date: set once a provider booked it, kept after a scrub.
    payment_booked_at         TIMESTAMPTZ NULL,
    -- active, cancelled_by_donor, deleted_by_admin
    deletion_state            TEXT    NOT NULL DEFAULT 'active',
    -- none, open, approved
    moderation_state          TEXT    NOT NULL DEFAULT 'none',
    is_exported               BOOLEAN NOT NULL DEFAULT FALSE,
    exported_at               TIMESTAMPTZ NULL,
    export_batch              TEXT    NOT NULL DEFAULT '',
    is_scrubbed               BOOLEAN NOT NULL DEFAULT FALSE,
    scrubbed_at               TIMESTAMPTZ NULL,
    -- exported, cancelled_or_deleted, abandoned, stale_moderation
    scrub_rule                TEXT    NOT NULL DEFAULT '',
    -- person, company, email_only, anonymous (kept after a scrub)
    donor_kind                TEXT    NOT NULL DEFAULT '',
    salutation                TEXT    NOT NULL DEFAULT '',
    title                     TEXT    NOT NULL DEFAULT '',
    first_name                TEXT    NOT NULL DEFAULT '',
    last_name                 TEXT    NOT NULL DEFAULT '',
    company_name              TEXT    NOT NULL DEFAULT '',
    street                    TEXT    NOT NULL DEFAULT '',
    postcode                  TEXT    NOT NULL DEFAULT '',
    city                      TEXT    NOT NULL DEFAULT '',
    country                   TEXT    NOT NULL DEFAULT '',
    email                     TEXT    NOT NULL DEFAULT '',
    wants_newsletter          BOOLEAN NOT NULL DEFAULT FALSE,
    wants_receipt             BOOLEAN NOT NULL DEFAULT FALSE,
    -- The public text when comment_is_public, else the private text ('' once scrubbed).
    comment                   TEXT    NOT NULL DEFAULT '',
    comment_is_public         BOOLEAN NOT NULL DEFAULT FALSE,
    comment_display_name      TEXT    NOT NULL DEFAULT '',
    tracking_id               BIGINT  NULL REFERENCES donation_tracking (id),
    campaign                  TEXT    NOT NULL DEFAULT '',
    keyword                   TEXT    NOT NULL DEFAULT '',
    impression_count          INTEGER NOT NULL DEFAULT 0 CHECK (impression_count >= 0),
    banner_impression_count   INTEGER NOT NULL DEFAULT 0 CHECK (banner_impression_count >= 0),
    contribution_tracking_id  BIGINT  NOT NULL DEFAULT 0 CHECK (contribution_tracking_id >= 0),
    parent_donation_id        BIGINT  NOT NULL DEFAULT 0 CHECK (parent_donation_id >= 0)
);

CREATE INDEX donation_by_created_at ON donation (created_at);
CREATE INDEX donation_by_payment_id ON donation (payment_id);
CREATE INDEX donation_by_email ON donation (email) WHERE email <> '';
CREATE INDEX donation_by_last_name ON donation (last_name) WHERE last_name <> '';
CREATE INDEX donation_by_tracking_id ON donation (tracking_id);
CREATE INDEX donation_by_parent ON donation (parent_donation_id) WHERE parent_donation_id <> 0;
CREATE INDEX donation_open_moderation ON donation (created_at) WHERE moderation_state = 'open';
CREATE INDEX donation_public_comments ON donation (created_at) WHERE comment_is_public;
-- Scrub candidates: not scrubbed and (exported, or cancelled/deleted, or external and still
-- pending). Small because nearly every old donation is scrubbed; a scrub selection that
-- repeats this predicate costs in proportion to the candidates, not the table.
CREATE INDEX donation_scrub_candidates ON donation (created_at)
    WHERE NOT is_scrubbed
      AND (is_exported
           OR deletion_state <> 'active'
           OR (payment_state = 'pending' AND payment_method IN ('MCP', 'PPL', 'SUB')));

-- Open moderation reasons; ModerationApproved deletes a donation's rows.
CREATE TABLE donation_moderation_reason (
    donation_id            BIGINT  NOT NULL CHECK (donation_id >= 0),
    moderation_identifier  TEXT    NOT NULL,
    source                 TEXT    NOT NULL DEFAULT '',
    PRIMARY KEY (donation_id, moderation_identifier, source)
);

-- One row per payment. Method-specific columns are '' where they do not apply.
CREATE TABLE payment (
    id                         BIGINT PRIMARY KEY CHECK (id >= 0),
    donation_id                BIGINT  NOT NULL CHECK (donation_id >= 0),
    method                     TEXT    NOT NULL DEFAULT '',
    amount_cents               BIGINT  NOT NULL DEFAULT 0,
    currency                   TEXT    NOT NULL DEFAULT '',
    interval_months            INTEGER NOT NULL DEFAULT 0 CHECK (interval_months >= 0),
    state                      TEXT    NOT NULL DEFAULT 'pending',
    -- The state a cancellation interrupted, restored by PaymentRestored; '' otherwise.
    state_before_cancellation  TEXT    NOT NULL DEFAULT '',
    valuation_date             TIMESTAMPTZ NULL,
    parent_payment_id          BIGINT  NOT NULL DEFAULT 0 CHECK (parent_payment_id >= 0),
    refunded_cents             BIGINT  NOT NULL DEFAULT 0,
    charged_back_cents         BIGINT  NOT NULL DEFAULT 0,
    -- BEZ
    iban                       TEXT    NOT NULL DEFAULT '',
    bic                        TEXT    NOT NULL DEFAULT '',
    -- UEB, SUB
    payment_reference_code     TEXT    NOT NULL DEFAULT '',
    -- MCP, PPL, SUB (provider data)
    transaction_id             TEXT    NOT NULL DEFAULT '',
    payer_id                   TEXT    NOT NULL DEFAULT '',
    subscription_id            TEXT    NOT NULL DEFAULT '',
    payer_status               TEXT    NOT NULL DEFAULT '',
    provider_payment_status    TEXT    NOT NULL DEFAULT '',
    created_at                 TIMESTAMPTZ NOT NULL,
    updated_at                 TIMESTAMPTZ NOT NULL
);

CREATE INDEX payment_by_donation ON payment (donation_id);
CREATE INDEX payment_by_transaction_id ON payment (transaction_id) WHERE transaction_id <> '';
CREATE INDEX payment_by_reference_code ON payment (payment_reference_code)
    WHERE payment_reference_code <> '';
CREATE INDEX payment_by_parent ON payment (parent_payment_id) WHERE parent_payment_id <> 0;

-- Who changed what: one row per event that touched a donation.
CREATE TABLE donation_event (
    donation_id  BIGINT  NOT NULL CHECK (donation_id >= 0),
    position     BIGINT  NOT NULL CHECK (position >= 0),
    stream       TEXT    NOT NULL,
    event_type   TEXT    NOT NULL,
    actor_kind   TEXT    NOT NULL,
    actor_id     TEXT    NOT NULL,
    occurred_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (donation_id, position)
);

CREATE INDEX donation_event_by_position ON donation_event (position);

-- WMF's civicrm_contribution_tracking, keyed on a pre-allocated id. NULL = not sent yet.
CREATE TABLE contribution_tracking (
    id                     BIGINT PRIMARY KEY CHECK (id >= 0),
    contribution_id        BIGINT  NULL CHECK (contribution_id >= 0),
    allocation_token       TEXT    NOT NULL DEFAULT '',
    amount                 NUMERIC(20, 3) NULL,
    currency               TEXT    NULL,
    usd_amount             NUMERIC(20, 2) NULL,
    is_recurring           BOOLEAN NULL,
    referrer               TEXT    NULL,
    utm_medium             TEXT    NULL,
    utm_campaign           TEXT    NULL,
    utm_key                TEXT    NULL,
    gateway                TEXT    NULL,
    appeal                 TEXT    NULL,
    payments_form_variant  TEXT    NULL,
    banner                 TEXT    NULL,
    landing_page           TEXT    NULL,
    payment_method_id      INTEGER NULL,
    payment_submethod_id   INTEGER NULL,
    language               TEXT    NULL,
    country                TEXT    NULL,
    tracking_date          TIMESTAMPTZ NULL,
    os                     TEXT    NULL,
    os_version             TEXT    NULL,
    browser                TEXT    NULL,
    browser_version        TEXT    NULL,
    recurring_choice_id    INTEGER NULL,
    device_type_id         INTEGER NULL,
    banner_size_id         INTEGER NULL,
    is_test_variant        BOOLEAN NULL,
    banner_variant         TEXT    NULL,
    is_pay_fee             BOOLEAN NULL,
    mailing_identifier     TEXT    NULL,
    utm_source             TEXT    NULL,
    banner_history_log_id  TEXT    NULL,
    screen_width           BIGINT  NULL CHECK (screen_width >= 0),
    screen_height          BIGINT  NULL CHECK (screen_height >= 0),
    app_install_id         TEXT    NULL
);

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
    kind                      TEXT    NOT NULL,
    existing                  TEXT    NOT NULL,
    attempted                 TEXT    NOT NULL,
    at                        TIMESTAMPTZ NOT NULL
);

CREATE INDEX contribution_tracking_conflict_by_id
    ON contribution_tracking_conflict (contribution_tracking_id);

-- The last position a projector applied; NULL before its first event. Written in the same
-- transaction as the rows.
CREATE TABLE projector_checkpoint (
    projector   TEXT    PRIMARY KEY,
    position    BIGINT  NULL CHECK (position >= 0),
    updated_at  TIMESTAMPTZ NOT NULL
);

-- Events an operator told a projector to pass over (`ledger project --skip`).
CREATE TABLE projector_skipped_event (
    projector   TEXT    NOT NULL,
    position    BIGINT  NOT NULL CHECK (position >= 0),
    stream      TEXT    NOT NULL,
    event_type  TEXT    NOT NULL,
    reason      TEXT    NOT NULL,
    skipped_by  TEXT    NOT NULL,
    at          TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (projector, position)
);

-- The strangler view for consumers of the legacy `spenden` table. The status letter is
-- derived from the independent state columns (domain/wmde.md, derivation table): cancelled or
-- deleted D; else open moderation P; else BEZ N, UEB Z, SUB booked Z, SUB not booked X,
-- MCP/PPL booked B, MCP/PPL not booked X. "Booked" means the provider set a valuation date,
-- which a scrub keeps, so a scrubbed donation keeps the letter it had.
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
    d.created_at AT TIME ZONE 'UTC' AS dt_new,
    NULL::TIMESTAMP AS dt_del,
    d.exported_at AT TIME ZONE 'UTC' AS dt_gruen,
    d.payment_id AS payment_id,
    d.tracking_id AS tracking_id,
    d.impression_count AS impression_count,
    d.banner_impression_count AS banner_impression_count
FROM donation AS d
LEFT JOIN payment AS p ON p.id = d.payment_id;
