-- The address-change read model: one row per address change (`domain/wmde-memberships.md`
-- §2), the token that allows a change, what it belongs to by kind and id (no foreign key: the
-- donation or application is another context), the new address while it is kept, the receipt
-- opt-out, and the export and scrub states, each in its own columns. Timestamps are
-- DATETIME(6) in UTC. MariaDB has no partial indexes: these cover every row.

CREATE TABLE address_change (
    id                      BIGINT PRIMARY KEY CHECK (id >= 0),
    created_at              DATETIME(6) NOT NULL,
    modified_at             DATETIME(6) NOT NULL,
    -- The token that allows the next change (UUID v4); kept after a scrub.
    current_identifier      VARCHAR(255) NOT NULL DEFAULT '',
    -- The token used for the last change; equal to current_identifier until a change.
    previous_identifier     VARCHAR(255) NOT NULL DEFAULT '',
    -- donation, membership: what external_id names (no foreign key: another context).
    external_id_kind        VARCHAR(255) NOT NULL DEFAULT '',
    external_id             BIGINT NOT NULL DEFAULT 0 CHECK (external_id >= 0),
    -- person, company
    address_type            VARCHAR(255) NOT NULL DEFAULT '',
    -- Whether a new address was given (stays true after a scrub).
    has_address             BOOLEAN NOT NULL DEFAULT FALSE,
    -- The new address: from the unsealed address unit; '' before a change, without the key
    -- and after a scrub.
    salutation              VARCHAR(255) NOT NULL DEFAULT '',
    title                   VARCHAR(255) NOT NULL DEFAULT '',
    first_name              VARCHAR(255) NOT NULL DEFAULT '',
    last_name               VARCHAR(255) NOT NULL DEFAULT '',
    company_name            VARCHAR(255) NOT NULL DEFAULT '',
    street                  VARCHAR(255) NOT NULL DEFAULT '',
    postcode                VARCHAR(255) NOT NULL DEFAULT '',
    city                    VARCHAR(255) NOT NULL DEFAULT '',
    country                 VARCHAR(255) NOT NULL DEFAULT '',
    -- False once the donor opted out of the donation receipt.
    donation_receipt        BOOLEAN NOT NULL DEFAULT TRUE,
    -- no_data, used_not_exported, used_exported (the legacy export states)
    export_state            VARCHAR(255) NOT NULL DEFAULT 'no_data',
    -- The current version (token) was exported; a change after an export clears these.
    is_exported             BOOLEAN NOT NULL DEFAULT FALSE,
    exported_at             DATETIME(6) NULL,
    export_batch            VARCHAR(255) NOT NULL DEFAULT '',
    is_scrubbed             BOOLEAN NOT NULL DEFAULT FALSE,
    scrubbed_at             DATETIME(6) NULL,
    -- exported, after_grace_period
    scrub_rule              VARCHAR(255) NOT NULL DEFAULT ''
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

CREATE INDEX address_change_by_current_identifier ON address_change (current_identifier);
CREATE INDEX address_change_by_previous_identifier ON address_change (previous_identifier);
CREATE INDEX address_change_by_external_id ON address_change (external_id_kind, external_id);
CREATE INDEX address_change_by_export_state ON address_change (export_state, modified_at);
-- The address-change scrub selection (projections/mariadb/address_change_scrub_candidates.sql)
-- reads only unscrubbed address changes that hold an address, in order of their last change:
-- the leading columns confine the range to them, so the cost follows them, not the table.
CREATE INDEX address_change_scrub_candidates
    ON address_change (is_scrubbed, has_address, modified_at);
